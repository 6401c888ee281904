package inventory

import (
	"maps"
	"os"
	"slices"
	"strings"

	"gitlab.com/debship/debship/internal/grammar"
	"gitlab.com/debship/debship/internal/secretfile"
)

// Secrets are never in the inventory itself (it is meant for version
// control and is read by every tool that deploys): the inventory names a
// file or an environment variable on the machine that runs debship, and
// setup carries the value to root-only files on the nodes.

// DOToken reads the DigitalOcean token from the file or the environment
// variable the inventory names.
func (inv *Inventory) DOToken() (string, error) {
	d, section := inv.DOConfig()
	if d == nil || inv.FloatingIP.Provider == ProviderDigitalOcean && inv.FloatingIP.DigitalOcean == nil {
		return "", inv.errorAt("floating-ip", "[floating-ip.digitalocean] is missing")
	}
	if d.TokenFile != "" {
		b, err := inv.readSecretFile(section+".token-file", "DigitalOcean token", d.TokenFile)
		if err != nil {
			return "", err
		}
		if t := strings.TrimSpace(b); t != "" {
			return t, nil
		}
		return "", inv.errorAt(section+".token-file", "the DigitalOcean token file %s is empty", d.TokenFile)
	}
	env := d.TokenEnv
	if env == "" {
		env = "DIGITALOCEAN_TOKEN"
	}
	if t := strings.TrimSpace(os.Getenv(env)); t != "" {
		return t, nil
	}
	return "", inv.errorAt(section, "the DigitalOcean token: $%s is not set; export it or set token-file in [%s]", env, section)
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

// readSecretFile reads a secret from a file only its owner can use, by
// the rule of internal/secretfile (the same for every secret debship
// reads).
func (inv *Inventory) readSecretFile(key, what, path string) (string, error) {
	b, err := secretfile.Read(path)
	if err != nil {
		return "", inv.errorAt(key, "the %s file %v", what, err)
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
	case agent == FenceDigitalOcean:
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
	inv.validateDOFencing(agent, add)
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

// validateDOFencing checks [fencing]'s DigitalOcean keys: only with agent
// "digitalocean", and its own token only when [floating-ip.digitalocean]
// does not provide one (one token, one API for both agents).
func (inv *Inventory) validateDOFencing(agent string, add func(key, format string, args ...any)) {
	f := inv.Fencing
	own := f.TokenFile != "" || f.TokenEnv != "" || f.APIURL != ""
	if agent != FenceDigitalOcean {
		for _, k := range []struct {
			key string
			set bool
		}{{"token-file", f.TokenFile != ""}, {"token-env", f.TokenEnv != ""}, {"api-url", f.APIURL != ""}, {"droplets", len(f.Droplets) > 0}} {
			key := "fencing." + k.key
			if k.key == "droplets" && k.set {
				// at the first entry's line (droplets may be a table of its own)
				key += "." + slices.Sorted(maps.Keys(f.Droplets))[0]
			}
			if k.set {
				add(key, "[fencing] %s is for agent = \"digitalocean\", but agent is %q; remove %s", k.key, agent, k.key)
			}
		}
		return
	}
	if f.PasswordFile != "" || f.PasswordEnv != "" {
		add("fencing", "fence_digitalocean logs in with the DigitalOcean API token, not a password; remove password-file and password-env from [fencing]")
	}
	if inv.FloatingIP.Provider == ProviderDigitalOcean {
		if own {
			add("fencing", "[fencing] with agent = \"digitalocean\" uses the token and api-url of [floating-ip.digitalocean]; remove token-file, token-env and api-url from [fencing]")
		}
	} else {
		switch {
		case f.TokenFile == "" && f.TokenEnv == "":
			add("fencing.agent", "agent = \"digitalocean\" needs an API token: set token-file (a file readable by you) or token-env "+
				"(an environment variable, default DIGITALOCEAN_TOKEN) in [fencing]; never the token itself")
		case f.TokenFile != "" && f.TokenEnv != "":
			add("fencing.token-env", "[fencing] has both token-file and token-env; keep one")
		case f.TokenEnv != "" && grammar.EnvName(f.TokenEnv) != nil:
			add("fencing.token-env", "[fencing] token-env %q is not an environment variable name", f.TokenEnv)
		}
		if f.APIURL != "" {
			inv.checkAPIURL("fencing.api-url", "[fencing]", f.APIURL, add)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.Droplets)) {
		n, ok := inv.Node(name)
		switch {
		case !ok || n.Role == RoleTiebreaker:
			add("fencing.droplets."+name, "[fencing] droplets: %q is not a node that runs the app; write droplets = { <node name> = <droplet id>, … }", name)
		case f.Droplets[name] <= 0:
			add("fencing.droplets."+name, "[fencing] droplets: %d is not a droplet id (the number in the droplet's URL in the control panel)", f.Droplets[name])
		}
	}
}
