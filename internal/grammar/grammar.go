// Package grammar holds the rules for values from debship's configuration
// files (cluster.toml, pyproject.toml's [tool.debship], webhook.toml) that
// end up in commands, file names and generated files on the nodes: host
// names, Debian package and user names, systemd units, gluster volumes,
// paths, addresses. Each rule is written once here, so the inventory, the
// package spec and the webhook cannot disagree on what a name is.
//
// Every function returns nil or an error whose text is the rule, phrased to
// follow the value in a sentence: `brick "/x y" <rule>`. Callers add the
// file, the line and the fix.
package grammar

import (
	"errors"
	"net/netip"
	"path"
	"regexp"
	"strings"
)

var (
	hostNameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	packageRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	userRE     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	unitRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9:_.@-]{0,254}$`)
	volumeRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$`)
	pathRE     = regexp.MustCompile(`^(/[A-Za-z0-9._+-]+)+$`)
	ifaceRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)
	envRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// RFC 3986 path and query characters (pchar, "/", "?"), percent-escapes
	// included; everything else must be percent-encoded.
	urlPathRE = regexp.MustCompile(`^/([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*$`)
	hostRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)
)

// HostName is the rule for the cluster's and the nodes' names: they are
// host names, corosync and pacemaker node names, tinc names and parts of
// certificate file names.
func HostName(s string) error {
	if hostNameRE.MatchString(s) {
		return nil
	}
	return errors.New("is not a host name: a lower-case letter, then lower-case letters, digits and '-', at most 63 characters, not ending in '-'")
}

// DebianPackage is Debian policy 5.6.1's rule for package names.
func DebianPackage(s string) error {
	if packageRE.MatchString(s) {
		return nil
	}
	return errors.New("is not a Debian package name: lower-case letters, digits, '+', '-' and '.', at least two characters, starting with a letter or digit")
}

// User is adduser's rule for system user names (SYS_NAME_REGEX without the
// trailing '$' of machine accounts), at most 32 characters.
func User(s string) error {
	if userRE.MatchString(s) {
		return nil
	}
	return errors.New("is not a user name: a lower-case letter or '_', then lower-case letters, digits, '_' and '-', at most 32 characters")
}

// SystemdUnit is systemd.unit(5)'s rule for unit names without the '\'
// escapes: letters, digits, ':', '_', '.', '-' and '@' (templates), not
// starting with '-' or '.', at most 255 characters.
func SystemdUnit(s string) error {
	if unitRE.MatchString(s) {
		return nil
	}
	return errors.New("is not a systemd unit name: letters, digits, ':', '_', '.', '-' and '@', starting with a letter, digit or '_', at most 255 characters")
}

// GlusterVolume is gluster's rule for volume names (letters, digits, '_'
// and '-', not starting with '-'), at most 64 characters; "all" is
// gluster's word for every volume.
func GlusterVolume(s string) error {
	if volumeRE.MatchString(s) && s != "all" {
		return nil
	}
	return errors.New("is not a gluster volume name: letters, digits, '_' and '-', not starting with '-', at most 64 characters, not \"all\"")
}

// Path is the rule for paths on the nodes (mount point, brick, venv):
// absolute, clean (no "." or ".." parts, no "//", no trailing '/'), of
// letters, digits and ". _ - +" only. Spaces, quotes and the like are
// refused rather than escaped: the paths go into /etc/fstab (fields split
// at white space), gluster's host:path brick syntax, systemd's ExecStart=,
// the venv's #! lines and shell commands, and each would need its own
// escaping.
func Path(s string) error {
	if pathRE.MatchString(s) && path.Clean(s) == s && len(s) < 4096 {
		return nil
	}
	return errors.New("is not a clean absolute path of letters, digits and \". _ - +\" (no spaces, quotes, \"..\" or other characters: the path goes into /etc/fstab, gluster's host:path syntax and shell commands)")
}

// Interface is the rule for Linux network interface names.
func Interface(s string) error {
	if ifaceRE.MatchString(s) && s != "." && s != ".." {
		return nil
	}
	return errors.New("is not a network interface name: letters, digits, '_', '.' and '-', starting with a letter or digit, at most 15 characters")
}

// EnvName is the rule for environment variable names.
func EnvName(s string) error {
	if envRE.MatchString(s) {
		return nil
	}
	return errors.New("is not an environment variable name: letters, digits and '_', not starting with a digit")
}

// URLPath is the rule for an HTTP path (with an optional query), as
// RFC 3986 writes it: starting with '/', other characters percent-encoded.
func URLPath(s string) error {
	if urlPathRE.MatchString(s) {
		return nil
	}
	return errors.New("is not a URL path: it starts with '/', and spaces, quotes, '\\', '`', '#' and non-ASCII characters are percent-encoded (e.g. %20 for a space)")
}

// HTTPURL is the rule for a base URL of an API: http(s)://host[:port][/path],
// no user, query or fragment.
func HTTPURL(s string) error {
	bad := errors.New("is not a URL such as https://api.example.com: http or https, a host name or address, an optional port and path, no user, query or fragment")
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return bad
		}
	}
	host, p, _ := strings.Cut(rest, "/")
	if !hostRE.MatchString(host) {
		return bad
	}
	if p != "" && (URLPath("/"+p) != nil || strings.ContainsAny(p, "?")) {
		return bad
	}
	return nil
}

// Addr is the rule for a node's address: an IP address without an IPv6
// zone (a zone is free text).
func Addr(s string) error {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return nil
	}
	return errors.New("is not an IP address such as 192.0.2.10 or 2001:db8::10")
}

// AddrOrPrefix is the rule for an address or a network in CIDR notation.
func AddrOrPrefix(s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if Addr(s) == nil {
		return nil
	}
	return errors.New("is not an IP address or a network such as 192.0.2.10 or 192.0.2.0/24")
}
