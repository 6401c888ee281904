package debversion

// PEP 440 → Debian version mapping.
//
// A Python project's version becomes the upstream part of the .deb version, so
// apt must order two builds the way pip would. The mapping is
//
//	[N!]R [pre] [.postP] [.devD] [+local]
//	→ [N:]R' [~pre.aN|~pre.bN|~rcN] [+postP] [~devD] [+local<encoded>]
//
// and every choice below exists to keep dpkg's order equal to PEP 440's:
//
//   - R' is the release with leading zeros dropped and trailing ".0"s removed,
//     then padded back to at least two parts: 1 → 1.0, 1.0.0 → 1.0, 1.2.0 →
//     1.2. PEP 440 says 1.0 == 1.0.0, dpkg says 1.0.0 > 1.0; worse, 1.0.0 >
//     1.0+post1 in dpkg ('.' > '+'), which would invert real order. One
//     canonical spelling per PEP 440 value makes equal versions map to the
//     same string (so 1.0 and 1.0.0 are one .deb version, as they are one
//     version to pip); padding to two parts keeps the familiar "1.0".
//   - "~" sorts before everything, even the end of the string, so
//     pre-releases and dev releases go below the release; "+" sorts after the
//     end, so post releases go above it.
//   - 1.0.dev1 < 1.0a1 in PEP 440, but dpkg compares letters in ASCII order
//     and "a" < "dev". Alpha and beta therefore become "~pre.a" and "~pre.b"
//     ("d" < "p" < "r"), while rc keeps the conventional "~rc".
//   - A local version ("+abc") sorts after its public version but before any
//     later one, so it becomes "+local…": above the end of the string, below
//     "+post" ("l" < "p") and below ".N" ('+' < '.'). See debianLocal for how
//     the segments keep their own order.
//   - dpkg stores the epoch in a C int, so larger epochs are refused.
//
// Only ASCII is accepted. Python's packaging also lets four non-ASCII letters
// through its case-insensitive regex (e.g. "1.0+ſ"), which dpkg could not
// carry anyway.

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// pep440Grammar is PEP 440's Appendix B regex, as Python's packaging (the
// implementation pip uses) spells it, applied to an ASCII-lowercased string.
const pep440Grammar = `v?` +
	`(?:(?P<epoch>[0-9]+)!)?` +
	`(?P<release>[0-9]+(?:\.[0-9]+)*)` +
	`(?:[-_.]?(?P<pre>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pren>[0-9]+)?)?` +
	`(?:-(?P<postimplicit>[0-9]+)|[-_.]?(?P<post>post|rev|r)[-_.]?(?P<postn>[0-9]+)?)?` +
	`(?:[-_.]?(?P<dev>dev)[-_.]?(?P<devn>[0-9]+)?)?` +
	`(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?`

var (
	pep440Version = regexp.MustCompile(`^` + pep440Grammar + `$`)
	// pep440Prefix finds the longest valid beginning, to say where an
	// invalid version goes wrong.
	pep440Prefix = func() *regexp.Regexp {
		re := regexp.MustCompile(`^` + pep440Grammar)
		re.Longest()
		return re
	}()
)

// debianRevisionChars are the characters dpkg allows in a Debian revision.
const debianRevisionChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.+~"

const pep440Examples = "valid versions look like 1.2, 1.2.3rc1, 1.2.post1, 1.2.dev1, 2!1.2 or 1.2+ubuntu.1"

// DebianVersion maps a PEP 440 version to the upstream part of a Debian version (epoch included as "N:", no Debian revision).
// It preserves ordering: for any two valid PEP 440 versions a<b (PEP 440 order), dpkg --compare-versions DebianVersion(a) lt DebianVersion(b).
// Versions equal under PEP 440 (1.0, 1.0.0, v1.0, 0!1.00) map to the same string.
func DebianVersion(pep440 string) (string, error) {
	// PEP 440 ignores surrounding whitespace and letter case.
	s := strings.Trim(pep440, " \t\n\r\f\v")
	m := pep440Version.FindStringSubmatch(pep440Lower(s))
	if m == nil {
		return "", pep440Error(pep440, s)
	}
	part := func(name string) string { return m[pep440Version.SubexpIndex(name)] }

	var b strings.Builder
	if epoch := pep440Number(part("epoch")); epoch != "0" {
		if _, err := strconv.ParseInt(epoch, 10, 32); err != nil {
			return "", fmt.Errorf("version %q has epoch %s, but a Debian epoch must be at most %d", pep440, epoch, math.MaxInt32)
		}
		b.WriteString(epoch + ":")
	}
	b.WriteString(debianRelease(part("release")))
	switch part("pre") {
	case "":
	case "a", "alpha":
		b.WriteString("~pre.a" + pep440Number(part("pren")))
	case "b", "beta":
		b.WriteString("~pre.b" + pep440Number(part("pren")))
	default: // rc, c, pre, preview
		b.WriteString("~rc" + pep440Number(part("pren")))
	}
	if n := part("postimplicit"); n != "" { // "1.0-1" is 1.0.post1
		b.WriteString("+post" + pep440Number(n))
	} else if part("post") != "" {
		b.WriteString("+post" + pep440Number(part("postn")))
	}
	if part("dev") != "" {
		b.WriteString("~dev" + pep440Number(part("devn")))
	}
	if l := part("local"); l != "" {
		b.WriteString("+local" + debianLocal(l))
	}
	return b.String(), nil
}

// FullDebianVersion appends "-<revision>" (revision must be a legal Debian revision, e.g. "1"), and returns an error naming the bad part otherwise.
func FullDebianVersion(pep440, revision string) (string, error) {
	upstream, err := DebianVersion(pep440)
	if err != nil {
		return "", err
	}
	if revision == "" {
		return "", fmt.Errorf("the Debian revision is empty; use a revision such as 1")
	}
	for _, c := range revision {
		if !strings.ContainsRune(debianRevisionChars, c) {
			return "", fmt.Errorf("the Debian revision %q contains %q; a revision may only contain letters, digits, '.', '+' and '~', such as 1 or 2+deb12u1", revision, c)
		}
	}
	return upstream + "-" + revision, nil
}

// pep440Error explains, in one sentence, where s stops being PEP 440.
func pep440Error(orig, s string) error {
	if s == "" {
		return fmt.Errorf("version is empty; %s", pep440Examples)
	}
	n := len(pep440Prefix.FindString(pep440Lower(s)))
	if n == 0 {
		return fmt.Errorf("%q is not a PEP 440 version: it must start with a number (optionally after \"v\" or an epoch like \"2!\"); %s", orig, pep440Examples)
	}
	return fmt.Errorf("%q is not a PEP 440 version: %q after %q is not a pre-release (a, b, rc), .postN, .devN or +local part; %s", orig, s[n:], s[:n], pep440Examples)
}

// debianRelease writes the release in its one canonical spelling (see top).
func debianRelease(release string) string {
	parts := strings.Split(release, ".")
	for i, p := range parts {
		parts[i] = pep440Number(p)
	}
	for len(parts) > 1 && parts[len(parts)-1] == "0" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) < 2 {
		parts = append(parts, "0")
	}
	return strings.Join(parts, ".")
}

// debianLocal encodes the segments of a local version so that dpkg orders
// them as PEP 440 does: segment by segment, a shorter list first, numbers
// after words, numbers numerically and words character by character ("abc10"
// < "abc2", and digits before letters).
//
//   - A number becomes ".N": dpkg compares digit runs numerically, and '.'
//     sorts above every letter, so numbers land after words.
//   - A word becomes "+" and the word with digits 0-9 spelled as letters A-J:
//     dpkg would compare a digit run numerically, but A-J compare one by one
//     and sort below a-z, as 0-9 do in PEP 440.
//   - A word that another segment follows gets a "0": without it the next
//     "+" or "." would continue the same non-digit run and sort above a
//     longer word's letters ("abc" then "x" would beat "abcd"); a digit ends
//     the run, and an extra 0 compares equal to no digits at all.
func debianLocal(local string) string {
	segs := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '-' || r == '_' })
	var b strings.Builder
	for i, seg := range segs {
		if strings.Trim(seg, "0123456789") == "" {
			b.WriteString("." + pep440Number(seg))
			continue
		}
		b.WriteByte('+')
		for _, c := range []byte(seg) {
			if c >= '0' && c <= '9' {
				c = 'A' + (c - '0')
			}
			b.WriteByte(c)
		}
		if i < len(segs)-1 {
			b.WriteByte('0')
		}
	}
	return b.String()
}

// pep440Number drops leading zeros; an omitted number ("1.0a", "1.0.post")
// is 0. Numbers stay strings: PEP 440 and dpkg both allow any length.
func pep440Number(digits string) string {
	if n := strings.TrimLeft(digits, "0"); n != "" {
		return n
	}
	return "0"
}

// pep440Lower lowercases ASCII only, so non-ASCII letters stay invalid.
func pep440Lower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
