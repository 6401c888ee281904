package inspect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/internal/testenv"
)

// fakeVenvRoot is a staging root with a tiny venv: enough for WriteTree and
// the checks, without running pip.
func fakeVenvRoot(t *testing.T, shebang string) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"opt/venvs/demo/pyvenv.cfg":                                    "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
		"opt/venvs/demo/bin/demo":                                      shebang + "\nimport sys\n",
		"opt/venvs/demo/lib/python3.11/site-packages/demo/__init__.py": "",
		"etc/demo/demo.toml":                                           "x = 1\n",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if strings.Contains(name, "/bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("/usr/bin/python3", filepath.Join(root, "opt/venvs/demo/bin/python3"))
	return root
}

// fakeTree is the control data of fakeVenvRoot's package.
func fakeTree(compression string, conffiles ...string) debfile.TreePackage {
	return debfile.TreePackage{Name: "demo", Version: "1.0-1", Arch: "all", Section: "web", Priority: "optional",
		Maintainer: "A B <a@example.org>", Description: "demo\ndemo 1.0, built by debship.", Conffiles: conffiles,
		Compression: compression, MTime: time.Unix(1700000000, 0)}
}

func TestWriteDebCompressions(t *testing.T) {
	testenv.NeedCommand(t, "dpkg-deb")
	root := fakeVenvRoot(t, "#!/opt/venvs/demo/bin/python3")
	for _, c := range []struct{ compression, member string }{
		{"xz", "data.tar.xz"}, {"zstd", "data.tar.zst"}, {"gzip", "data.tar.gz"}, {"none", "data.tar"},
	} {
		t.Run(c.compression, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "demo.deb")
			if err := debfile.WriteTree(root, out, fakeTree(c.compression, "/etc/demo/demo.toml")); err != nil {
				t.Fatal(err)
			}
			p, err := ReadPackage(out)
			if err != nil {
				t.Fatal(err)
			}
			if p.Members[2] != c.member {
				t.Errorf("members = %v, want %s", p.Members, c.member)
			}
			if got := strings.Join(p.Conffiles, ","); got != "/etc/demo/demo.toml" {
				t.Errorf("conffiles = %q", got)
			}
			// dpkg itself must read it too.
			if b, err := exec.Command("dpkg-deb", "--contents", out).CombinedOutput(); err != nil || !strings.Contains(string(b), "./opt/venvs/demo/bin/demo") {
				t.Errorf("dpkg-deb --contents: %v\n%s", err, b)
			}
			for _, r := range p.Check() {
				if !r.OK {
					t.Errorf("check %s: %v", r.Name, r.Problems)
				}
			}
		})
	}
}

// The checks must catch what they are for: a shebang out of the venv, a
// leaked build path, a file that does not match md5sums.
func TestInspectChecksFail(t *testing.T) {
	testenv.NeedCommand(t, "dpkg-deb")
	root := fakeVenvRoot(t, "#!/tmp/build42/root/opt/venvs/demo/bin/python3")
	out := filepath.Join(t.TempDir(), "demo.deb")
	if err := debfile.WriteTree(root, out, fakeTree("gzip")); err != nil {
		t.Fatal(err)
	}
	p, err := ReadPackage(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]CheckResult{}
	for _, r := range p.Check() {
		got[r.Name] = r
	}
	if r := got["venv shebangs point into the venv"]; r.OK || !strings.Contains(strings.Join(r.Problems, " "), "/opt/venvs/demo/bin/demo") {
		t.Errorf("shebang check: %+v", r)
	}
	if r := got["no build path leaked"]; r.OK || !strings.Contains(strings.Join(r.Problems, " "), "build42") {
		t.Errorf("build path check: %+v", r)
	}
	if r := got["md5sums match the files"]; !r.OK {
		t.Errorf("md5 check failed on an intact package: %+v", r)
	}
	// Tamper with a file: md5sums no longer match.
	p.content["opt/venvs/demo/lib/python3.11/site-packages/demo/__init__.py"] = []byte("evil")
	if r := p.checkMD5(); r.OK {
		t.Errorf("md5 check passed on a tampered file")
	}
}

// inspect reads .deb files it did not write: one made by dpkg-deb -b
// (control.tar.xz and data.tar.xz).
func TestInspectForeignDeb(t *testing.T) {
	testenv.NeedCommand(t, "dpkg-deb")
	dir := filepath.Join(t.TempDir(), "pkg")
	os.MkdirAll(filepath.Join(dir, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(dir, "usr/share/foo"), 0o755)
	os.WriteFile(filepath.Join(dir, "DEBIAN/control"), []byte("Package: foo\nVersion: 2.0-3\nArchitecture: all\nMaintainer: A B <a@example.org>\nDescription: foo\n multi-line\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "DEBIAN/postinst"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "usr/share/foo/data"), []byte("data\n"), 0o644)
	deb := dir + ".deb"
	if out, err := exec.Command("dpkg-deb", "-Zxz", "--root-owner-group", "-b", dir, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -b: %v\n%s", err, out)
	}
	p, err := ReadPackage(deb)
	if err != nil {
		t.Fatal(err)
	}
	if p.Field("Version") != "2.0-3" || p.Field("description") != "foo\n multi-line" || !strings.Contains(p.Scripts["postinst"], "echo hi") {
		t.Errorf("read back: version=%q description=%q scripts=%v", p.Field("Version"), p.Field("Description"), p.Scripts)
	}
	var found bool
	for _, e := range p.Files {
		found = found || (e.Path == "/usr/share/foo/data" && e.Type == "file" && e.Size == 5 && e.Owner == "root/root")
	}
	if !found {
		t.Errorf("files = %+v", p.Files)
	}
	if _, err := ReadPackage(filepath.Join(dir, "DEBIAN/control")); err == nil || !strings.Contains(err.Error(), "not a .deb") {
		t.Errorf("reading a non-deb: %v", err)
	}
	if id, err := debfile.OpenDeb(deb); err != nil || id.Package != "foo" || id.Version != "2.0-3" || id.Arch != "all" || len(id.SHA256) != 64 {
		t.Errorf("OpenDeb = %+v, %v", id, err)
	}
	if _, err := debfile.OpenDeb(filepath.Join(dir, "DEBIAN/control")); err == nil || !strings.Contains(err.Error(), "not a .deb") {
		t.Errorf("OpenDeb of a non-deb: %v", err)
	}
}
