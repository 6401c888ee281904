package transport

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"gitlab.com/debship/debship/internal/syncbuf"
)

// Config is how to reach one node over SSH.
type Config struct {
	Node string // name for messages
	Host string // address or host name
	Port int    // default 22
	User string // default root; any other user runs commands with sudo -n
	// Key is a private key file; empty: the keys of the ssh-agent at
	// $SSH_AUTH_SOCK. With both, the key is tried first.
	Key string
	// KnownHosts is the known_hosts file the host key must be in (strict
	// checking). Empty: ~/.ssh/known_hosts.
	KnownHosts string
	// AcceptNewHostKeys records the key of a host that is not in KnownHosts
	// yet (trust on first use). A host whose key differs from the recorded
	// one is refused regardless.
	AcceptNewHostKeys bool
	// Timeout bounds connecting and logging in (default 10 s).
	Timeout time.Duration
	// Attempts is how often to try connecting when the network fails
	// (default 3, 1 s then 2 s apart). Login and host-key errors are not
	// retried.
	Attempts int
}

func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = 22
	}
	if c.User == "" {
		c.User = "root"
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Attempts == 0 {
		c.Attempts = 3
	}
	if c.Node == "" {
		c.Node = c.Host
	}
	return c
}

// Addr is host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.withDefaults().Port)) }

// SSH is a Transport over one SSH connection; commands are sessions on it.
type SSH struct {
	cfg    Config
	client *ssh.Client
}

// HostKeyError is a host key that is not known, or that changed.
type HostKeyError struct {
	Node, Addr, KnownHosts string
	Key                    ssh.PublicKey
	Changed                bool // a different key is recorded for the host
}

func (e *HostKeyError) Error() string {
	fp := ssh.FingerprintSHA256(e.Key)
	if e.Changed {
		return fmt.Sprintf("%s: HOST KEY CHANGED for %s: it now offers %s %s, which is not the key recorded in %s. "+
			"Someone may be intercepting the connection, or the host was reinstalled. If you know it was reinstalled, "+
			"check the new key on its console and remove the old entry with: ssh-keygen -R %s -f %s",
			e.Node, e.Addr, e.Key.Type(), fp, e.KnownHosts, knownhosts.Normalize(e.Addr), e.KnownHosts)
	}
	return fmt.Sprintf("%s: unknown host key for %s (%s %s, not in %s); check the fingerprint on the host "+
		"(ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub) and run again with --accept-new-host-keys to record it",
		e.Node, e.Addr, e.Key.Type(), fp, e.KnownHosts, keyFileType(e.Key.Type()))
}

func keyFileType(t string) string {
	switch {
	case strings.Contains(t, "ed25519"):
		return "ed25519"
	case strings.Contains(t, "ecdsa"):
		return "ecdsa"
	default:
		return "rsa"
	}
}

// knownHostsMu serialises appends to known_hosts files within the process.
var knownHostsMu sync.Mutex

// Dial connects and logs in. The error says what to fix: unknown or changed
// host key, refused login, unreachable host.
func Dial(ctx context.Context, cfg Config) (*SSH, error) {
	cfg = cfg.withDefaults()
	kh := cfg.KnownHosts
	if kh == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("%s: known_hosts: %w", cfg.Node, err)
		}
		kh = filepath.Join(home, ".ssh", "known_hosts")
	}
	auth, err := authMethods(cfg)
	if err != nil {
		return nil, err
	}
	hostKey, algos, err := hostKeyCallback(cfg, kh)
	if err != nil {
		return nil, err
	}
	clientCfg := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.Timeout,
	}
	addr := cfg.Addr()
	var lastErr error
	for attempt := 1; attempt <= cfg.Attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%s: connect to %s: %w (after: %v)", cfg.Node, addr, ctx.Err(), lastErr)
			case <-time.After(time.Duration(attempt-1) * time.Second):
			}
		}
		client, err := dialOnce(ctx, addr, clientCfg)
		if err == nil {
			return &SSH{cfg: cfg, client: client}, nil
		}
		var hk *HostKeyError
		if errors.As(err, &hk) {
			hk.Node = cfg.Node
			return nil, hk
		}
		if isAuthError(err) {
			return nil, fmt.Errorf("%s: login as %s@%s refused: %v; check [ssh] user and key in the inventory (key %s)",
				cfg.Node, cfg.User, addr, err, keyDesc(cfg))
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%s: cannot connect to %s after %d attempts: %v; is the host up and is the address right?",
		cfg.Node, addr, cfg.Attempts, lastErr)
}

func keyDesc(cfg Config) string {
	if cfg.Key != "" {
		return cfg.Key
	}
	return "from ssh-agent"
}

func isAuthError(err error) bool {
	return strings.Contains(err.Error(), "unable to authenticate")
}

func dialOnce(ctx context.Context, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	d := net.Dialer{Timeout: cfg.Timeout, KeepAlive: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(cfg.Timeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	client := ssh.NewClient(c, chans, reqs)
	go keepalive(client)
	return client, nil
}

// keepalive notices a dead peer (a crashed node) so that sessions fail
// instead of hanging: a request every 10 s, the connection closed after 3
// unanswered ones.
func keepalive(c *ssh.Client) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for range t.C {
		done := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				return
			}
		case <-time.After(30 * time.Second):
			c.Close()
			return
		}
	}
}

func authMethods(cfg Config) ([]ssh.AuthMethod, error) {
	var signers []ssh.Signer
	if cfg.Key != "" {
		b, err := os.ReadFile(cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: ssh key: %w", cfg.Node, err)
		}
		s, err := ssh.ParsePrivateKey(b)
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			if as := agentSigners(); len(as) > 0 {
				return []ssh.AuthMethod{ssh.PublicKeys(as...)}, nil
			}
			return nil, fmt.Errorf("%s: ssh key %s has a passphrase; add it to ssh-agent (ssh-add %s) and run again", cfg.Node, cfg.Key, cfg.Key)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: ssh key %s: %w", cfg.Node, cfg.Key, err)
		}
		signers = append(signers, s)
	}
	signers = append(signers, agentSigners()...)
	if len(signers) == 0 {
		return nil, fmt.Errorf("%s: no SSH key: set [ssh] key in the inventory or start ssh-agent with the key added", cfg.Node)
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, nil
}

func agentSigners() []ssh.Signer {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil
	}
	conn, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return nil
	}
	// The connection stays open for the signers' lifetime (the process).
	s, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil
	}
	return s
}

// hostKeyCallback checks host keys strictly against the file; unknown keys
// are recorded when cfg.AcceptNewHostKeys. It also returns the key
// algorithms already known for the host, so that the server offers the
// recorded key rather than another type that would look like a change.
func hostKeyCallback(cfg Config, file string) (ssh.HostKeyCallback, []string, error) {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		if !cfg.AcceptNewHostKeys {
			return nil, nil, fmt.Errorf("%s: known_hosts file %s does not exist; create it with the hosts' keys, or run with --accept-new-host-keys to record them on first use", cfg.Node, file)
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.Node, err)
		}
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.Node, err)
		}
	}
	base, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: known_hosts %s: %w", cfg.Node, file, err)
	}
	addr := cfg.Addr()
	algos := knownAlgorithms(base, addr)
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		// Re-read: another node's connection may have recorded keys.
		knownHostsMu.Lock()
		defer knownHostsMu.Unlock()
		cur, err := knownhosts.New(file)
		if err != nil {
			return fmt.Errorf("known_hosts %s: %w", file, err)
		}
		err = cur(hostname, remote, key)
		var ke *knownhosts.KeyError
		if err == nil || !errors.As(err, &ke) {
			return err
		}
		if len(ke.Want) > 0 {
			return &HostKeyError{Addr: addr, KnownHosts: file, Key: key, Changed: true}
		}
		if !cfg.AcceptNewHostKeys {
			return &HostKeyError{Addr: addr, KnownHosts: file, Key: key}
		}
		names := []string{knownhosts.Normalize(addr)}
		f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("record host key: %w", err)
		}
		defer f.Close()
		if _, err := f.WriteString(knownhosts.Line(names, key) + "\n"); err != nil {
			return fmt.Errorf("record host key: %w", err)
		}
		return nil
	}
	return cb, algos, nil
}

// knownAlgorithms asks the callback with a dummy key: the KeyError lists
// the keys recorded for the host.
func knownAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	dummy, _ := ssh.ParsePublicKey(dummyKey)
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		tcp = &net.TCPAddr{IP: net.IPv4zero}
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, tcp, dummy); !errors.As(err, &ke) {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, k := range ke.Want {
		t := k.Key.Type()
		var algs []string
		switch t {
		case ssh.KeyAlgoRSA:
			algs = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		default:
			algs = []string{t}
		}
		for _, a := range algs {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// dummyKey is an ed25519 public key nobody has the private half of.
var dummyKey = func() []byte {
	b, _ := base64.StdEncoding.DecodeString("AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	return b
}()

// Node implements Transport.
func (s *SSH) Node() string { return s.cfg.Node }

// Config returns the settings the connection was made with, e.g. to prove
// that a fresh login still works.
func (s *SSH) Config() Config { return s.cfg }

// Close implements Transport.
func (s *SSH) Close() error { return s.client.Close() }

// wrap makes cmd run as root.
func (s *SSH) wrap(cmd string) string {
	if s.cfg.User == "root" {
		return cmd
	}
	return "sudo -n -H -- sh -c " + Quote(cmd)
}

// Run implements Transport.
func (s *SSH) Run(ctx context.Context, cmd string) ([]byte, []byte, error) {
	return s.run(ctx, cmd, nil)
}

func (s *SSH) run(ctx context.Context, cmd string, stdin []byte) ([]byte, []byte, error) {
	sess, err := s.client.NewSession()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: new SSH session: %w (connection lost?)", s.cfg.Node, err)
	}
	defer sess.Close()
	// A cancelled run returns what arrived so far without waiting for the
	// session's copying goroutines: an unresponsive node would never end
	// them (Session.Close only asks the node to close the channel), so they
	// may still write.
	var stdout, stderr syncbuf.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if stdin != nil {
		sess.Stdin = bytes.NewReader(stdin)
	}
	full := "LC_ALL=C.UTF-8; export LC_ALL; " + cmd
	done := make(chan error, 1)
	go func() { done <- sess.Run(s.wrap(full)) }()
	select {
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
		return stdout.Bytes(), stderr.Bytes(), fmt.Errorf("%s: `%s`: %w", s.cfg.Node, cmd, ctx.Err())
	case err = <-done:
	}
	if err == nil {
		return stdout.Bytes(), stderr.Bytes(), nil
	}
	ce := &CommandError{Node: s.cfg.Node, Cmd: cmd, ExitCode: -1, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		ce.ExitCode = ee.ExitStatus()
		if s.cfg.User != "root" && ce.ExitCode == 1 && strings.Contains(ce.Stderr, "sudo: a password is required") {
			ce.Stderr += fmt.Sprintf("\nhint: user %s needs passwordless sudo on %s (a line \"%s ALL=(ALL) NOPASSWD:ALL\" in /etc/sudoers.d/)", s.cfg.User, s.cfg.Node, s.cfg.User)
		}
	} else if !errors.As(err, new(*ssh.ExitMissingError)) {
		ce.Stderr += "\n" + err.Error()
	}
	return stdout.Bytes(), stderr.Bytes(), ce
}

// Upload implements Transport.
func (s *SSH) Upload(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("%s: upload: %s is not an absolute path", s.cfg.Node, path)
	}
	if data == nil {
		data = []byte{}
	}
	_, _, err := s.run(ctx, uploadScript(path, mode), data)
	if err != nil {
		return fmt.Errorf("upload %s: %w", path, err)
	}
	return nil
}
