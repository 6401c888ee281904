package debian

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name, file string
		want       string // target, "" when not a known release
	}{
		{"bookworm", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n", "debian-12"},
		{"trixie", "ID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n", "debian-13"},
		{"codename only", "ID=debian\nVERSION_CODENAME=trixie\n", "debian-13"},
		{"testing without a number", "ID=debian\nVERSION_CODENAME=forky\n", ""},
		{"ubuntu", "ID=ubuntu\nVERSION_ID=\"24.04\"\nVERSION_CODENAME=noble\nID_LIKE=debian\n", ""},
		{"old release", "ID=debian\nVERSION_ID=\"11\"\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := ParseOSRelease([]byte(tt.file))
			if ok != (tt.want != "") || r.Target != tt.want {
				t.Errorf("got %q %v, want %q", r.Target, ok, tt.want)
			}
		})
	}
}

func TestHostReadsOSRelease(t *testing.T) {
	saved := osRelease
	t.Cleanup(func() { osRelease = saved })
	osRelease = filepath.Join(t.TempDir(), "os-release")
	if _, ok := Host(); ok {
		t.Error("a missing os-release gave a release")
	}
	os.WriteFile(osRelease, []byte("ID=debian\nVERSION_ID=\"13\"\n"), 0o644)
	if r, ok := Host(); !ok || r.Suite != "trixie" || r.Python != "3.13" {
		t.Errorf("got %+v %v", r, ok)
	}
}

func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for i, r := range Releases {
		for _, k := range []string{r.Target, r.Suite} {
			if seen[k] {
				t.Errorf("%s twice in the table", k)
			}
			seen[k] = true
		}
		if i > 0 && Releases[i-1].Version <= r.Version {
			t.Errorf("releases not newest first at %s", r.Target)
		}
		if got, ok := ByTarget(r.Target); !ok || got != r {
			t.Errorf("ByTarget(%s) = %+v", r.Target, got)
		}
		if got, ok := BySuite(r.Suite); !ok || got != r {
			t.Errorf("BySuite(%s) = %+v", r.Suite, got)
		}
	}
	if err := UnknownTargetError("debian-11"); err.Error() != `unknown target "debian-11"; the targets are debian-13, debian-12` {
		t.Errorf("got %v", err)
	}
}
