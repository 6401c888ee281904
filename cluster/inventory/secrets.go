package inventory

import (
	"errors"
	"maps"
	"os"

	"slices"
	"strings"

	"gitlab.com/debship/debship/internal/grammar"
)

// Secrets are never in the inventory itself (it is meant for version
// control and is read by every tool that deploys): the inventory names a
// file or an environment variable on the machine that runs debship, and
// setup carries the value to root-only files on the nodes.

// DOToken reads the DigitalOcean token from the file or the environment
// variable the inventory names.
func (inv *Inventory) DOToken() (string, error) {
	d := inv.FloatingIP.DigitalOcean
	if d == nil {
		return "", inv.errorAt("floating-ip", "[floating-ip.digitalocean] is missing")
	}
	if d.TokenFile != "" {
		b, err := inv.readSecretFile("floating-ip.digitalocean.token-file", "DigitalOcean token", d.TokenFile)
		if err != nil {
			return "", err
		}
		if t := strings.TrimSpace(b); t != "" {
			return t, nil
		}
		return "", inv.errorAt("floating-ip.digitalocean.token-file", "the DigitalOcean token file %s is empty", d.TokenFile)
	}
	env := d.TokenEnv
	if env == "" {
		env = "DIGITALOCEAN_TOKEN"
	}
	if t := strings.TrimSpace(os.Getenv(env)); t != "" {
		return t, nil
	}
	return "", inv.errorAt("floating-ip.digitalocean", "the DigitalOcean token: $%s is not set; export it or set token-file in [floating-ip.digitalocean]", env)
}

// FencePassword reads the fence agent's login password from password-file
// or password-env in [fencing]; "" when the inventory names neither. A
// trailing newline is not part of it; other white space is.
func (inv *Inventory) FencePassword() (string, error) {
	f := inv.Fencing
	if f == nil || (f.PasswordFile == "" && f.PasswordEnv == "") {
		return "", nil
	}
	var pw string
	key := "fencing.password-env"
	if f.PasswordFile != "" {
		key = "fencing.password-file"
		b, err := inv.readSecretFile(key, "fence password", f.PasswordFile)
		if err != nil {
			return "", err
		}
		pw = b
	} else {
		pw = os.Getenv(f.PasswordEnv)
	}
	pw = strings.TrimRight(pw, "\r\n")
	switch {
	case pw == "" && f.PasswordFile != "":
		return "", inv.errorAt(key, "the fence password file %s is empty; write the agent's password into it", f.PasswordFile)
	case pw == "":
		return "", inv.errorAt(key, "the fence password: $%s is empty or not set; export it, or set password-file in [fencing]", f.PasswordEnv)
	case strings.ContainsAny(pw, "\n\r\x00"):
		// The agent takes the first line of password_script's output.
		return "", inv.errorAt(key, "the fence password has a line break or NUL inside; fence agents read one line")
	}
	return pw, nil
}

// readSecretFile reads a secret from a file that no other user may read:
// a secret readable by the group or everyone is no secret, as webhook.toml
// refuses too.
func (inv *Inventory) readSecretFile(key, what, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", inv.errorAt(key, "the %s file %s: %v", what, path, errors.Unwrap(err))
	}
	if m := fi.Mode().Perm(); m&0o044 != 0 {
		return "", inv.errorAt(key, "the %s file %s can be read by other users (mode %04o); chmod 600 %s", what, path, m, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", inv.errorAt(key, "the %s file %s: %v", what, path, errors.Unwrap(err))
	}
	return string(b), nil
}

// secretOption reports fence options that hold a secret by their name
// (fence-agents: password, passwd, snmp_priv_passwd, api_token,
// secret_key, community …).
func secretOption(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	for _, s := range []string{"passw", "secret", "token", "apikey", "api_key", "community"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// passwordScriptOption: fence agents run password_script with the shell,
// so debship sets it itself (to a command of its own).
func passwordScriptOption(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	return n == "password_script" || n == "passwd_script"
}

func (inv *Inventory) validateFencing(add func(key, format string, args ...any)) {
	agent := inv.FenceAgent()
	switch {
	case agent == FenceNone:
	case agent == FenceDummy:
		if !inv.Lab {
			add("fencing.agent", "fencing agent fence_dummy fences nothing and is for the lab only (lab = true); "+
				"use the fence agent of your hosting (fence_ipmilan, fence_virsh, fence_aws, …)")
		}
	case !agentNameRE.MatchString(agent):
		add("fencing.agent", "fencing agent %q is not a fence agent name such as \"fence_ipmilan\"", agent)
	}
	f := inv.Fencing
	if f == nil {
		return
	}
	if f.AcceptNoFencing && agent != FenceNone {
		add("fencing.accept-no-fencing", "accept-no-fencing = true is for a cluster without a fence agent, but agent is %q; remove one of the two from [fencing]", agent)
	}
	switch {
	case f.PasswordFile != "" && f.PasswordEnv != "":
		add("fencing.password-env", "[fencing] has both password-file and password-env; keep one")
	case (f.PasswordFile != "" || f.PasswordEnv != "") && agent == FenceNone:
		add("fencing", "[fencing] has a password but no agent; set agent, or remove password-file and password-env")
	case f.PasswordEnv != "" && grammar.EnvName(f.PasswordEnv) != nil:
		add("fencing.password-env", "password-env %q is not an environment variable name", f.PasswordEnv)
	}
	for _, k := range slices.Sorted(maps.Keys(f.Options)) {
		switch {
		case passwordScriptOption(k):
			add("fencing.options."+k, "fencing option %s is a command the nodes' shell would run; debship sets it itself "+
				"when [fencing] has password-file (a file only you can read) or password-env", k)
		case secretOption(k):
			add("fencing.options."+k, "fencing option %s holds a secret, which must not be in the inventory (it would end up in "+
				"version control, the CIB and the nodes' process list); give the agent's password with password-file "+
				"(a file only you can read) or password-env in [fencing], and other credentials by the agent's own "+
				"credentials file on the nodes", k)
		case !optionNameRE.MatchString(k):
			add("fencing.options."+k, "[fencing] options: %q is not a stonith option name (lower-case letters, digits, '_' and '-', starting with a letter); "+
				"write the option as the fence agent's manual page names it, e.g. ip or username", k)
		}
	}
}
