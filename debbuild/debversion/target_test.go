package debversion

import (
	"os/exec"
	"testing"

	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testenv"
)

func release(t *testing.T, target string) debian.Release {
	t.Helper()
	r, ok := debian.ByTarget(target)
	if !ok {
		t.Fatalf("no release %s", target)
	}
	return r
}

// The builds of one version for both releases share an APT repository;
// apt must move a node upgraded from 12 to 13 to the 13 build, and every
// targeted build must supersede an untargeted one of an earlier debship.
// dpkg itself is the judge; CompareDebianVersions must agree with it.
func TestTargetVersionOrder(t *testing.T) {
	testenv.NeedCommand(t, "dpkg")
	v := func(version, target string) string { return TargetVersion(version, release(t, target)) }
	tests := []struct {
		name          string
		lower, higher string
	}{
		{"12 build below the 13 build of one version", v("1.4-1", "debian-12"), v("1.4-1", "debian-13")},
		{"an untargeted build below the 12 build", "1.4-1", v("1.4-1", "debian-12")},
		{"an untargeted build below the 13 build", "1.4-1", v("1.4-1", "debian-13")},
		{"the next upstream version wins over the release", v("1.4-1", "debian-13"), v("1.5-1", "debian-12")},
		{"the next revision wins over the release", v("1.4-1", "debian-13"), v("1.4-2", "debian-12")},
		{"a pre-release stays below its release", v("1.5~rc1-1", "debian-13"), v("1.5-1", "debian-12")},
		{"a post-release above its release", v("1.5-1", "debian-13"), v("1.5+post1-1", "debian-12")},
		{"the untargeted next version above an old targeted one", v("1.4-1", "debian-13"), "1.5-1"},
		{"Debian's own security upload to 12 below ours for 13", "1.4-1~deb12u1", v("1.4-1", "debian-13")},
		{"a per-target rebuild (u2) above u1", v("1.4-1", "debian-13"), "1.4-1+deb13u2"},
		{"epochs still decide first", v("2:1.0-1", "debian-12"), v("3:0.1-1", "debian-12")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := exec.Command("dpkg", "--compare-versions", tt.lower, "lt", tt.higher).Run(); err != nil {
				t.Errorf("dpkg --compare-versions %s lt %s: false", tt.lower, tt.higher)
			}
			if c := CompareDebianVersions(tt.lower, tt.higher); c >= 0 {
				t.Errorf("CompareDebianVersions(%s, %s) = %d, dpkg says lower", tt.lower, tt.higher, c)
			}
		})
	}
}

func TestVersionTarget(t *testing.T) {
	tests := []struct{ version, want string }{
		{"1.4-1+deb13u1", "debian-13"},
		{"2:1.4.1-3+deb12u1", "debian-12"},
		{"1.4-1+deb13u2", "debian-13"},
		{"1.4-1~deb12u1", "debian-12"}, // Debian's own suffix for an older release
		{"1.4-1+deb13", "debian-13"},
		{"1.4-1", ""},
		{"1.4+deb13u1", ""},      // native: no revision, so no release suffix
		{"1.4-1+deb11u3", ""},    // a release debship does not build for
		{"1.4-1+deb13u1+b1", ""}, // a binNMU is another build
		{"1.4+deb13u1-1", ""},    // in the upstream part: the project's own
	}
	for _, tt := range tests {
		r, ok := VersionTarget(tt.version)
		if ok != (tt.want != "") || r.Target != tt.want {
			t.Errorf("VersionTarget(%s) = %q %v, want %q", tt.version, r.Target, ok, tt.want)
		}
	}
	// What the build writes, it reads back.
	for _, r := range debian.Releases {
		if got, ok := VersionTarget(TargetVersion("1.4-1", r)); !ok || got != r {
			t.Errorf("round trip of %s: %+v", r.Target, got)
		}
	}
}
