package debfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileName(t *testing.T) {
	for _, c := range []struct{ pkg, version, arch, want string }{
		{"hello-web", "1.4-1", "all", "hello-web_1.4-1_all.deb"},
		{"hello-web", "2:1.4-1", "amd64", "hello-web_1.4-1_amd64.deb"},                   // epoch dropped
		{"hello-web", "1.4", "arm64", "hello-web_1.4_arm64.deb"},                         // native: no revision
		{"hello-web", "1.4~rc1-2+deb12u1", "all", "hello-web_1.4~rc1-2+deb12u1_all.deb"}, // '~' kept
		{"a", "10:1:2-3-4", "i386", "a_1:2-3-4_i386.deb"},                                // only the epoch goes
		{"debship", "0.3+git5.gabc-1", "armhf", "debship_0.3+git5.gabc-1_armhf.deb"},
	} {
		if got := FileName(c.pkg, c.version, c.arch); got != c.want {
			t.Errorf("FileName(%q, %q, %q) = %q, want %q", c.pkg, c.version, c.arch, got, c.want)
		}
		id := Identity{Package: c.pkg, Version: c.version, Arch: c.arch}
		if got := id.FileName(); got != c.want {
			t.Errorf("%+v.FileName() = %q, want %q", id, got, c.want)
		}
	}
	for v, want := range map[string]string{"1.4-1": "1.4", "2:1.4-1": "2:1.4", "1.4": "1.4", "1.0-rc1-3": "1.0-rc1"} {
		if got := (Identity{Version: v}).Upstream(); got != want {
			t.Errorf("Upstream of %s = %s, want %s", v, got, want)
		}
	}
}

func TestDebArch(t *testing.T) {
	for _, c := range []struct {
		goarch, goarm, want string
		ok                  bool
	}{
		{"amd64", "", "amd64", true},
		{"arm64", "", "arm64", true},
		{"386", "", "i386", true},
		{"arm", "", "armhf", true}, // Go's default GOARM is 7
		{"arm", "7", "armhf", true},
		{"arm", "6", "armhf", true}, // Raspberry Pi OS
		{"arm", "5", "armel", true},
		{"arm", "5,softfloat", "armel", true},
		{"arm", "7,hardfloat", "armhf", true},
		{"ppc64le", "", "ppc64el", true},
		{"ppc64", "", "ppc64", true},
		{"s390x", "", "s390x", true},
		{"riscv64", "", "riscv64", true},
		{"mips64le", "", "mips64el", true},
		{"mipsle", "", "mipsel", true},
		{"loong64", "", "loong64", true},
		{"mips", "", "", false},
		{"mips64", "", "", false},
		{"wasm", "", "", false},
	} {
		got, ok := DebArch(c.goarch, c.goarm)
		if got != c.want || ok != c.ok {
			t.Errorf("DebArch(%q, %q) = %q, %v; want %q, %v", c.goarch, c.goarm, got, ok, c.want, c.ok)
		}
	}
	if a := GoDebArch(); a == "" || strings.ContainsAny(a, "_ ") {
		t.Errorf("GoDebArch() = %q", a)
	}
}

func TestOpenDebRefuses(t *testing.T) {
	dir := t.TempDir()
	notDeb := filepath.Join(dir, "x.deb")
	os.WriteFile(notDeb, []byte("!<arch>\n"), 0o644)
	if _, err := OpenDeb(notDeb); err == nil || !strings.Contains(err.Error(), "not a .deb") {
		t.Errorf("empty ar archive: %v", err)
	}
	if _, err := OpenDeb(filepath.Join(dir, "missing.deb")); err == nil {
		t.Error("a missing file was opened")
	}
}
