package debbuild

import (
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/debship/debship/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGeneratedFilesGolden renders debship's own files for the example in
// both modes and compares them with reviewed copies in testdata/golden.
// Regenerate with: go test ./debbuild -run Golden -update
func TestGeneratedFilesGolden(t *testing.T) {
	for _, mode := range []string{"systemd", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			spec, err := LoadSpec(example, Overrides{})
			if err != nil {
				t.Fatal(err)
			}
			spec.Mode = mode
			root := t.TempDir()
			g := &generator{spec: spec, root: root, sde: 1770116400, debVersion: "1.4-1"}
			if err := g.generate(); err != nil {
				t.Fatal(err)
			}
			got := map[string][]byte{}
			for name, b := range g.scripts {
				got[name] = b
			}
			for name, rel := range map[string]string{
				"hello-web.service": "lib/systemd/system/hello-web.service",
				"copyright":         "usr/share/doc/hello-web/copyright",
				"changelog.Debian":  "usr/share/doc/hello-web/changelog.Debian.gz",
				"lintian-overrides": "usr/share/lintian/overrides/hello-web",
				"hello-web.1":       "usr/share/man/man1/hello-web.1.gz",
				"hello-web.toml":    "etc/hello-web/hello-web.toml",
			} {
				b, err := os.ReadFile(filepath.Join(root, rel))
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(rel, ".gz") {
					zr, err := gzip.NewReader(bytes.NewReader(b))
					if err != nil {
						t.Fatal(err)
					}
					if b, err = io.ReadAll(zr); err != nil {
						t.Fatal(err)
					}
				}
				got[name] = b
			}
			dir := filepath.Join("testdata", "golden", mode)
			for name, b := range got {
				p := filepath.Join(dir, name)
				if *update {
					os.MkdirAll(dir, 0o755)
					if err := os.WriteFile(p, b, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(p)
				if err != nil {
					t.Fatalf("%v (run: go test ./debbuild -run Golden -update)", err)
				}
				if !bytes.Equal(b, want) {
					t.Errorf("%s differs from %s (review, then: go test ./debbuild -run Golden -update):\n%s", name, p, lineDiff(string(want), string(b)))
				}
			}
		})
	}
}

// lineDiff shows the first lines that differ, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out = append(out, "- "+a, "+ "+b)
			if len(out) > 10 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// The maintainer scripts are POSIX sh: they must parse with dash, Debian's
// /bin/sh, and pass shellcheck.
func TestMaintainerScriptsParse(t *testing.T) {
	testenv.NeedCommand(t, "dash", "shellcheck")
	for _, mode := range []string{"systemd", "cluster"} {
		for _, name := range []string{"postinst", "prerm", "postrm"} {
			p := filepath.Join("testdata", "golden", mode, name)
			if out, err := exec.Command("dash", "-n", p).CombinedOutput(); err != nil {
				t.Errorf("dash -n %s: %v\n%s", p, err, out)
			}
			if out, err := exec.Command("shellcheck", "-s", "sh", p).CombinedOutput(); err != nil {
				t.Errorf("shellcheck %s:\n%s", p, out)
			}
		}
	}
}
