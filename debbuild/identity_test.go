package debbuild

import (
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/testenv"
)

// OpenDeb on a .deb of the real build, against dpkg-deb and sha256sum.
func TestOpenDeb(t *testing.T) {
	testenv.NeedCommand(t, "dpkg-deb", "sha256sum")
	// An epoch (PEP 440 "2!") and a revision: the file name drops the
	// epoch, the identity keeps it.
	res := buildProject(t, exampleRepo(t), Overrides{Version: "2!1.4.1", Revision: "3"}, false)
	version, _ := debversion.VersionFor("2:1.4.1-3", "")
	if got, want := filepath.Base(res.Path), debfile.FileName("hello-web", version, "all"); got != want {
		t.Errorf("built %s, want %s", got, want)
	}
	id, err := debfile.OpenDeb(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	field := func(name string) string {
		return strings.TrimSpace(run(t, "dpkg-deb", "-f", res.Path, name))
	}
	sum, _, _ := strings.Cut(run(t, "sha256sum", res.Path), " ")
	want := debfile.Identity{Package: field("Package"), Version: field("Version"), Arch: field("Architecture"), SHA256: sum, Target: res.Target}
	if id != want {
		t.Errorf("OpenDeb = %+v\ndpkg-deb -f and sha256sum say %+v", id, want)
	}
	if id.Version != version || id.Version != res.Version {
		t.Errorf("version %s, build said %s, want %s", id.Version, res.Version, version)
	}
	if id.FileName() != filepath.Base(res.Path) {
		t.Errorf("FileName() = %s, the build wrote %s", id.FileName(), filepath.Base(res.Path))
	}
}
