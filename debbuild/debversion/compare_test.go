package debversion

import (
	"os/exec"
	"testing"

	"gitlab.com/debship/debship/internal/testenv"
)

// CompareDebianVersions must agree with dpkg itself.
func TestCompareDebianVersionsAgainstDpkg(t *testing.T) {
	testenv.NeedCommand(t, "dpkg")
	vs := []string{"1.0", "1.0-1", "1.0-2", "1.0~rc1-1", "1.0~~a", "1.0+post1-1", "1.0.1", "1:0.1", "2:1.0-1",
		"1.0a", "1.0.a", "1.0+b", "1.00", "1.0~pre.a1", "1.0~pre.b1", "1.0~dev3", "10.0", "9.9", "1.0-1~bpo1", "1.0-1+deb12u1"}
	for _, a := range vs {
		for _, b := range vs {
			got := CompareDebianVersions(a, b)
			for _, op := range []struct {
				name string
				ok   bool
			}{{"lt", got < 0}, {"eq", got == 0}, {"gt", got > 0}} {
				err := exec.Command("dpkg", "--compare-versions", a, op.name, b).Run()
				if (err == nil) != op.ok {
					t.Errorf("CompareDebianVersions(%q, %q) = %d, but dpkg says %s is %v", a, b, got, op.name, err == nil)
				}
			}
		}
	}
}
