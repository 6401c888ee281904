package debversion

// Build targets. A target is a Debian release (internal/debian's table);
// its number goes into the Debian revision as "+deb<N>u1", Debian's own
// suffix for "this version, for release N" (stable and security updates
// write it). Every build of a version carries one, so the builds of one
// version for several releases sit side by side in one APT repository and
// order the way apt must move a node:
//
//	1.4-1 < 1.4-1+deb12u1 < 1.4-1+deb13u1 < 1.5-1+deb12u1
//
// A node upgraded from 12 to 13 moves to the 13 build of the version it
// has (+deb13 > +deb12), and both builds supersede an untargeted 1.4-1 of
// an earlier debship, which "~deb<N>" (Debian's suffix for an older
// release's copy of a version that a newer release carries unsuffixed)
// would sort below. The upstream version still decides first, and "u1"
// leaves room for a rebuild of one target alone (u2) without a new
// revision for all.

import (
	"fmt"
	"regexp"
	"strconv"

	"gitlab.com/debship/debship/internal/debian"
)

// TargetVersion is the full Debian version of a build for target r.
func TargetVersion(version string, r debian.Release) string {
	return fmt.Sprintf("%s+deb%du1", version, r.Version)
}

// targetSuffixRE finds Debian's release suffix at the end of a revision:
// "+deb13u1" (stable updates, debship's), "~deb12u1" (uploads of a newer
// release's version to an older one), or "+deb13" alone.
var targetSuffixRE = regexp.MustCompile(`-[A-Za-z0-9.+~]*[+~]deb([0-9]+)(u[0-9]+)?$`)

// VersionTarget is the release a Debian version was built for, read from
// its suffix; false when the version names none or one not in the table.
// The deploy's preflight compares it with a node's release.
func VersionTarget(version string) (debian.Release, bool) {
	m := targetSuffixRE.FindStringSubmatch(version)
	if m == nil {
		return debian.Release{}, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return debian.Release{}, false
	}
	return debian.ByVersion(n)
}

// ResolveTarget is the release a build makes a package for: the named
// target, or with name "" the host's release. targeted is false when no
// target was named and the host is no release in the table (the build then
// uses the host's python3 and its version carries no suffix).
func ResolveTarget(name string) (r debian.Release, targeted bool, err error) {
	if name == "" {
		r, ok := debian.Host()
		return r, ok, nil
	}
	r, ok := debian.ByTarget(name)
	if !ok {
		return r, false, debian.UnknownTargetError(name)
	}
	return r, true, nil
}

// VersionFor is the full Debian version version of a build for target (""
// the host's release): with the target's suffix, or as it is when the
// build is untargeted.
func VersionFor(version, target string) (string, error) {
	r, targeted, err := ResolveTarget(target)
	if err != nil || !targeted {
		return version, err
	}
	return TargetVersion(version, r), nil
}
