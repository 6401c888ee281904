package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/inspect"
)

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDebianVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v0.1.0":                  "0.1-1",
		"v1.2.3":                  "1.2.3-1",
		"v1.0.0rc1":               "1.0~rc1-1",
		"v0.1.0-3-gabc1234":       "0.1+git3.gabc1234-1",
		"v0.1.0-3-gabc1234-dirty": "0.1+git3.gabc1234.dirty-1",
		"d5d8160":                 "0~git.d5d8160-1",
		"41b2631":                 "0~git.41b2631-1", // a hash, not version 41 beta 2631
		"d5d8160-dirty":           "0~git.d5d8160.dirty-1",
		"dev":                     "0~dev-1",
	} {
		got, err := DebianVersion(in)
		if err != nil || got != want {
			t.Errorf("DebianVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := DebianVersion("release candidate"); err == nil {
		t.Error("nonsense version accepted")
	}
}

// TestPackage builds debship's own .deb twice from a real binary, as
// `make deb` does (the packaging tool run as a program, so that under the
// race detector the test does not spend minutes in an instrumented xz
// compressor), and reads it back: the binary, the man page, bash
// completion and docs are there, and the two builds are identical.
func TestPackage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "debship")
	tool := filepath.Join(dir, "debship-deb")
	for _, b := range [][2]string{{bin, "../../cmd/debship"}, {tool, "."}} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	var debs [][]byte
	for i := 0; i < 2; i++ {
		out := filepath.Join(dir, "out", string(rune('a'+i)))
		cmd := exec.Command(tool, "--binary", bin, "--version", "v0.3.0", "--output", out, "--maintainer", "T <t@example.org>")
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("debship-deb: %v\n%s", err, exitStderr(err))
		}
		p := strings.TrimSpace(string(stdout))
		if filepath.Base(p) != "debship_0.3-1_"+debfile.GoDebArch()+".deb" {
			t.Errorf("file name %s", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		debs = append(debs, b)
		if i > 0 {
			continue
		}
		pkg, err := inspect.ReadPackage(p)
		if err != nil {
			t.Fatal(err)
		}
		if pkg.Field("Package") != "debship" || pkg.Field("Version") != "0.3-1" {
			t.Errorf("control: %v", pkg.Control)
		}
		have := map[string]inspect.Entry{}
		for _, e := range pkg.Files {
			have[strings.TrimPrefix(e.Path, ".")] = e
		}
		for _, f := range []string{"/usr/bin/debship", "/usr/share/man/man1/debship.1.gz", "/usr/share/bash-completion/completions/debship", "/usr/share/doc/debship/copyright", "/usr/share/doc/debship/changelog.Debian.gz"} {
			if _, ok := have[f]; !ok {
				t.Errorf("%s missing; files: %v", f, pkg.Files)
			}
		}
		gz, _ := pkg.FileContent("/usr/share/man/man1/debship.1.gz")
		man := gunzip(t, gz)
		for _, want := range []string{".TH DEBSHIP 1", `.SH "DEBSHIP CI GENERATE"`, `.SH "DEBSHIP RELEASE"`, "CI_JOB_TOKEN"} {
			if !bytes.Contains(man, []byte(want)) {
				t.Errorf("man page lacks %q", want)
			}
		}
		// groff (man-db's renderer) must read it without a warning.
		if groff, err := exec.LookPath("groff"); err == nil {
			c := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
			c.Stdin = bytes.NewReader(man)
			if out, err := c.CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("groff: %v\n%s", err, out)
			}
		}
	}
	if !bytes.Equal(debs[0], debs[1]) {
		t.Error("two builds of the same binary differ")
	}
}

// The package's architecture is the binary's, whatever the packager runs on.
func TestBinaryArch(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ goarch, goarm, want string }{
		{"arm64", "", "arm64"},
		{"arm", "5", "armel"},
	} {
		bin := filepath.Join(dir, c.goarch+c.goarm)
		cmd := exec.Command("go", "build", "-o", bin, src)
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+c.goarch, "GOARM="+c.goarm, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build GOARCH=%s: %v\n%s", c.goarch, err, out)
		}
		if got, err := binaryArch(bin); err != nil || got != c.want {
			t.Errorf("GOARCH=%s GOARM=%s: %q, %v; want %q", c.goarch, c.goarm, got, err, c.want)
		}
	}
	if _, err := binaryArch(src); err == nil {
		t.Error("a Go source file has an architecture")
	}
}

func exitStderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
