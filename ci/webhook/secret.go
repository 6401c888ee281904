package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gitlab.com/debship/debship/internal/secretfile"
)

// Secret is a credential read from the configuration. It prints, formats
// and marshals as "[redacted]", so that no log line, error message or
// /status answer can carry it by accident.
type Secret struct{ b []byte }

const redacted = "[redacted]"

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) Format(f fmt.State, _ rune)   { io.WriteString(f, redacted) }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// IsSet reports whether the secret was configured.
func (s Secret) IsSet() bool { return len(s.b) > 0 }

func (s Secret) reveal() string { return string(s.b) }
func (s Secret) bytes() []byte  { return s.b }

// readSecret reads the secret a [token]-like table points to. A secret may
// never sit where other users of the host can use it: a file, and a
// webhook.toml holding one inline, follow the one rule of
// internal/secretfile (owner only, as OpenSSH wants a private key).
// config is webhook.toml as opened by Load.
func (c *Config) readSecret(key string, ref *secretRef, config fs.FileInfo) (Secret, error) {
	n := 0
	for _, v := range []string{ref.File, ref.Env, ref.Credential, ref.Value} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return Secret{}, c.errAt(key, "[%s] needs exactly one of file, env, credential or value (got %d)", key, n)
	}
	var raw string
	switch {
	case ref.Value != "":
		if err := secretfile.Check(c.File, config); err != nil {
			return Secret{}, c.errAt(key+".value", "the %s is written inline, and %v, or move the secret to a file, credential or env", key, err)
		}
		raw = ref.Value
	case ref.Env != "":
		raw = os.Getenv(ref.Env)
		if raw == "" {
			return Secret{}, c.errAt(key+".env", "the environment variable %s of the %s is empty or unset", ref.Env, key)
		}
		c.secretEnv = append(c.secretEnv, ref.Env)
	case ref.Credential != "":
		if strings.ContainsAny(ref.Credential, "/\x00") || ref.Credential == "." || ref.Credential == ".." {
			return Secret{}, c.errAt(key+".credential", "credential %q is not a credential name", ref.Credential)
		}
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return Secret{}, c.errAt(key+".credential", "the %s is the systemd credential %q, but $CREDENTIALS_DIRECTORY is not set: run under systemd with LoadCredential= (debship-webhook.service does), or use file or env", key, ref.Credential)
		}
		// Not secretfile's rule: systemd gives a service user its
		// credential as root's 0400 file plus an ACL, which stat shows as
		// mode 0440; the credentials directory is private and read-only.
		b, err := os.ReadFile(filepath.Join(dir, ref.Credential))
		if err != nil {
			return Secret{}, c.errAt(key+".credential", "the %s: credential %q: %v; check LoadCredential= of the unit", key, ref.Credential, errors.Unwrap(err))
		}
		raw = string(b)
	default:
		b, err := secretfile.Read(resolve(filepath.Dir(c.File), ref.File))
		if err != nil {
			return Secret{}, c.errAt(key+".file", "the %s file %v", key, err)
		}
		raw = string(b)
	}
	// Files and credentials usually end with a newline that is not part
	// of the secret.
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Secret{}, c.errAt(key, "the %s is empty", key)
	}
	return Secret{[]byte(raw)}, nil
}

// decodeSigningKey turns GitLab's signing token "whsec_<base64>" into the
// HMAC key, as the Standard Webhooks libraries do.
func decodeSigningKey(raw []byte) ([]byte, error) {
	s := strings.TrimPrefix(string(raw), "whsec_")
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64 after whsec_")
	}
	if len(k) < 16 {
		return nil, fmt.Errorf("the key is only %d bytes", len(k))
	}
	return k, nil
}
