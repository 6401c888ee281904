package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSources(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, "etc/apt", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestHostMirrors(t *testing.T) {
	tests := []struct {
		name  string
		suite string
		files map[string]string
		want  Mirrors
		err   string
	}{
		{"deb822 as on Debian 12", "bookworm", map[string]string{"sources.list.d/debian.sources": `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
`, "sources.list.d/nodesource.sources.disabled": "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n"},
			Mirrors{Main: "http://deb.debian.org/debian", Security: "http://deb.debian.org/debian-security"}, ""},
		{"one-line with options and a third-party repo first", "bookworm", map[string]string{
			"sources.list": `# local mirror
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] https://apt.example.com/repo stable main
deb-src http://mirror.example.org/debian bookworm main
deb [ arch=amd64 ] http://mirror.example.org/debian/ bookworm main contrib
deb http://security.example.org/debian-security bookworm-security main
`}, Mirrors{Main: "http://mirror.example.org/debian", Security: "http://security.example.org/debian-security"}, ""},
		{"disabled stanza and .list in sources.list.d", "bookworm", map[string]string{
			"sources.list.d/a.sources": "Enabled: no\nTypes: deb\nURIs: http://old.example.org/debian\nSuites: bookworm\n",
			"sources.list.d/b.list":    "deb http://new.example.org/debian bookworm main\n",
		}, Mirrors{Main: "http://new.example.org/debian"}, ""},
		{"another Debian release on the host", "bookworm", map[string]string{
			"sources.list.d/debian.sources": "Types: deb\nURIs: http://ftp.de.debian.org/debian\nSuites: trixie trixie-updates\n\nTypes: deb\nURIs: http://security.debian.org/debian-security\nSuites: trixie-security\n",
		}, Mirrors{Main: "http://ftp.de.debian.org/debian", Security: "http://security.debian.org/debian-security"}, ""},
		{"the suite asked for wins over the host's own", "trixie", map[string]string{
			"sources.list": `deb http://a.example.org/debian bookworm main
deb http://a.example.org/debian-security bookworm-security main
deb http://b.example.org/debian trixie main
deb http://b.example.org/debian-security trixie-security main
`}, Mirrors{Main: "http://b.example.org/debian", Security: "http://b.example.org/debian-security"}, ""},
		{"no Debian mirror", "bookworm", map[string]string{"sources.list": "deb https://apt.example.com/repo stable main\n"},
			Mirrors{}, "no Debian mirror found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HostMirrors(writeSources(t, tt.files), tt.suite)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want error %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
