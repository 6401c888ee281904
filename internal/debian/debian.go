// Package debian is the one table of the Debian releases debship builds
// for and runs on. The build picks the interpreter's minor version and the
// version suffix from it, the test roots and the lab take their suites from
// it, and CI its job images, so that adding a release is adding a row.
package debian

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Release is one Debian release as a build target.
type Release struct {
	Target  string // what users write: --target debian-13, targets = ["debian-13"]
	Suite   string // the codename: the archive's suite, debootstrap's argument
	Version int    // the major version number (VERSION_ID of os-release)
	Python  string // the minor version of the release's /usr/bin/python3
	// UnitDir is where the release's packages put systemd units: trixie
	// completed the /usr merge, and its lintian refuses /lib
	// (aliased-location); bookworm's debhelper still wrote /lib.
	UnitDir string
}

// Releases are the supported releases, newest first: the first is the
// default target of a host that is none of them.
var Releases = []Release{
	{Target: "debian-13", Suite: "trixie", Version: 13, Python: "3.13", UnitDir: "/usr/lib/systemd/system"},
	{Target: "debian-12", Suite: "bookworm", Version: 12, Python: "3.11", UnitDir: "/lib/systemd/system"},
}

// Image is the release's Docker image, which CI builds it in.
func (r Release) Image() string { return "debian:" + r.Suite }

// String is the target name.
func (r Release) String() string { return r.Target }

// ByTarget finds a release by its target name ("debian-13").
func ByTarget(name string) (Release, bool) {
	for _, r := range Releases {
		if r.Target == name {
			return r, true
		}
	}
	return Release{}, false
}

// BySuite finds a release by its codename ("trixie").
func BySuite(suite string) (Release, bool) {
	for _, r := range Releases {
		if r.Suite == suite {
			return r, true
		}
	}
	return Release{}, false
}

// ByVersion finds a release by its major version (13).
func ByVersion(v int) (Release, bool) {
	for _, r := range Releases {
		if r.Version == v {
			return r, true
		}
	}
	return Release{}, false
}

// Targets lists the target names, newest first, for help and errors.
func Targets() []string {
	var out []string
	for _, r := range Releases {
		out = append(out, r.Target)
	}
	return out
}

// UnknownTargetError is the one sentence for a target name not in the table.
func UnknownTargetError(name string) error {
	return fmt.Errorf("unknown target %q; the targets are %s", name, strings.Join(Targets(), ", "))
}

// osRelease is where Host reads the running system's release (tests point
// it elsewhere).
var osRelease = "/etc/os-release"

// Host is the release of the running system, read from /etc/os-release;
// false when it is not Debian or not a release in the table (Ubuntu,
// testing without a VERSION_ID, a container without the file).
func Host() (Release, bool) {
	b, err := os.ReadFile(osRelease)
	if err != nil {
		return Release{}, false
	}
	return ParseOSRelease(b)
}

// ParseOSRelease reads ID and VERSION_ID (or VERSION_CODENAME) of an
// os-release file.
func ParseOSRelease(b []byte) (Release, bool) {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok {
			kv[k] = strings.Trim(v, `"'`)
		}
	}
	if kv["ID"] != "debian" {
		return Release{}, false
	}
	if n, err := strconv.Atoi(kv["VERSION_ID"]); err == nil {
		return ByVersion(n)
	}
	return BySuite(kv["VERSION_CODENAME"])
}
