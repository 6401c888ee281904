package venv

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	stageV = "/tmp/stage/opt/venvs/app"
	finalV = "/opt/venvs/app"
)

func TestRewriteShebang(t *testing.T) {
	long := "/tmp/" + strings.Repeat("x", 120) + "/opt/venvs/app"
	spaced := "/tmp/my stage/opt/venvs/app"
	body := "# -*- coding: utf-8 -*-\nimport sys\n"
	tests := []struct {
		name, in, from, to, want string
		changed                  bool
	}{
		{"plain", "#!" + stageV + "/bin/python\n" + body, stageV, finalV,
			"#!" + finalV + "/bin/python\n" + body, true},
		{"plain with interpreter args", "#!" + stageV + "/bin/python3 -E -s\n" + body, stageV, finalV,
			"#!" + finalV + "/bin/python3 -E -s\n" + body, true},
		{"space after #!", "#! " + stageV + "/bin/python\n" + body, stageV, finalV,
			"#!" + finalV + "/bin/python\n" + body, true},
		{"no newline", "#!" + stageV + "/bin/python", stageV, finalV,
			"#!" + finalV + "/bin/python\n", true},
		{"trampoline for a long path", "#!/bin/sh\n'''exec' " + long + "/bin/python \"$0\" \"$@\"\n' '''\n" + body, long, finalV,
			"#!" + finalV + "/bin/python\n" + body, true},
		{"trampoline for a path with spaces", "#!/bin/sh\n'''exec' \"" + spaced + "/bin/python\" \"$0\" \"$@\"\n' '''\n" + body, spaced, finalV,
			"#!" + finalV + "/bin/python\n" + body, true},
		{"trampoline with interpreter args", "#!/bin/sh\n'''exec' \"" + spaced + "/bin/python\" -E \"$0\" \"$@\"\n' '''\n" + body, spaced, finalV,
			"#!" + finalV + "/bin/python -E\n" + body, true},
		{"trampoline kept when the new path has spaces", "#!" + stageV + "/bin/python\n" + body, stageV, "/opt/my app",
			"#!/bin/sh\n'''exec' \"/opt/my app/bin/python\" \"$0\" \"$@\"\n' '''\n" + body, true},
		{"trampoline kept when the new path is too long", "#!" + stageV + "/bin/python\n" + body, stageV, long,
			"#!/bin/sh\n'''exec' " + long + "/bin/python \"$0\" \"$@\"\n' '''\n" + body, true},
		{"other interpreter untouched", "#!/usr/bin/env python3\n" + body, stageV, finalV,
			"#!/usr/bin/env python3\n" + body, false},
		{"sibling dir with the same prefix untouched", "#!" + stageV + "2/bin/python\n", stageV, finalV,
			"#!" + stageV + "2/bin/python\n", false},
		{"not a script", body, stageV, finalV, body, false},
		{"broken trampoline untouched", "#!/bin/sh\n'''exec' " + stageV + "/bin/python\n", stageV, finalV,
			"#!/bin/sh\n'''exec' " + stageV + "/bin/python\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := rewriteShebang([]byte(tt.in), tt.from, tt.to)
			if string(got) != tt.want || changed != tt.changed {
				t.Errorf("rewriteShebang() =\n%q, %v\nwant\n%q, %v", got, changed, tt.want, tt.changed)
			}
		})
	}
}

func TestRewritePyvenvCfg(t *testing.T) {
	cfg := "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n" +
		"executable = /usr/bin/python3.11\ncommand = /usr/bin/python3 -m venv --without-pip " + stageV + "\n"
	tests := []struct {
		name, in, home, want, err string
	}{
		{"command rewritten", cfg, "/usr/bin",
			strings.Replace(cfg, stageV, finalV, 1), ""},
		{"no command line (older pythons)", "home = /usr/bin\nversion = 3.9.2\n", "/usr/bin",
			"home = /usr/bin\nversion = 3.9.2\n", ""},
		{"pyenv home rejected", strings.Replace(cfg, "home = /usr/bin", "home = /home/dev/.pyenv/versions/3.11.7/bin", 1), "/usr/bin",
			"", "home = \"/home/dev/.pyenv/versions/3.11.7/bin\""},
		{"missing home rejected", "version = 3.11.2\n", "/usr/bin", "", `home = ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rewritePyvenvCfg([]byte(tt.in), stageV, finalV, tt.home)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestRewriteRecord(t *testing.T) {
	files := map[string]string{ // RECORD path -> content after relocation
		"../../../bin/app":       "#!/opt/venvs/app/bin/python\n",
		"app/__init__.py":        "",
		"app/data/x.txt":         "data",
		"app/a,b.txt":            "q",
		"/opt/venvs/app/bin/abs": "abs",
	}
	digest := func(rp string) (string, int64, bool, error) {
		if rp == "/usr/share/elsewhere" {
			return "", 0, true, nil // outside the venv: left alone
		}
		c, ok := files[rp]
		if !ok {
			return "", 0, false, nil
		}
		h, n, err := recordHash(strings.NewReader(c))
		return h, n, true, err
	}
	hs := func(p string) string {
		h, n, _ := recordHash(strings.NewReader(files[p]))
		return h + "," + strconv.FormatInt(n, 10)
	}
	tests := []struct {
		name, in, want string
	}{
		{"CRLF kept, rehashed, removed files dropped",
			"../../../bin/app,sha256=old,40\r\n" +
				"app/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\r\n" +
				"app/__pycache__/__init__.cpython-311.pyc,,\r\n" +
				"app-1.0.dist-info/RECORD,,\r\n" +
				"app-1.0.dist-info/direct_url.json,sha256=abc,81\r\n",
			"../../../bin/app," + hs("../../../bin/app") + "\r\n" +
				"app/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\r\n" +
				"app-1.0.dist-info/RECORD,,\r\n"},
		{"LF kept, absolute paths relocated, foreign paths left",
			stageV + "/bin/abs,sha256=old,1\n" + "/usr/share/elsewhere,sha256=zzz,3\n" + "\"app/data/x.txt\",sha256=old,9\n",
			"/opt/venvs/app/bin/abs," + hs("/opt/venvs/app/bin/abs") + "\n" + "/usr/share/elsewhere,sha256=zzz,3\n" +
				"app/data/x.txt," + hs("app/data/x.txt") + "\n"},
		{"paths with commas stay quoted",
			"\"app/a,b.txt\",sha256=old,1\n",
			"\"app/a,b.txt\"," + hs("app/a,b.txt") + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rewriteRecord([]byte(tt.in), stageV, finalV, digest)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// writeTree writes files (path -> content; a "->" prefix makes a symlink).
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(c, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			mode := os.FileMode(0o644)
			if strings.HasPrefix(c, "#!") {
				mode = 0o755
			}
			err = os.WriteFile(full, []byte(c), mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRelocateTree(t *testing.T) {
	stageRoot := filepath.Join(t.TempDir(), "stage")
	stage := stageRoot + finalV
	sp := "lib/python3.11/site-packages/"
	script := "#!" + stage + "/bin/python\nimport sys\n"
	h, n, _ := recordHash(strings.NewReader("#!" + finalV + "/bin/python\nimport sys\n"))
	writeTree(t, stage, map[string]string{
		"pyvenv.cfg":                    "home = /usr/bin\ncommand = /usr/bin/python3 -m venv " + stage + "\n",
		"bin/python3":                   "->/usr/bin/python3",
		"bin/python":                    "->python3",
		"bin/linked":                    "->" + stage + "/lib/tool",
		"bin/app":                       script,
		"bin/activate":                  "VIRTUAL_ENV='" + stage + "'\nexport VIRTUAL_ENV\n",
		"bin/activate.csh":              "setenv VIRTUAL_ENV '" + stage + "'\n",
		"bin/activate.fish":             "set -gx VIRTUAL_ENV '" + stage + "'\n",
		"bin/Activate.ps1":              "$VenvDir = Get-Item -Path $PSScriptRoot\n",
		sp + "extra.pth":                stage + "/src\n",
		sp + "proj.egg-link":            stage + "/src\n.\n",
		sp + "app-1.0.dist-info/RECORD": "../../../bin/app,sha256=old,1\r\napp-1.0.dist-info/RECORD,,\r\n",
	})
	if err := relocateTree(stage, stage, finalV, "/usr/bin"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pyvenv.cfg":                    "home = /usr/bin\ncommand = /usr/bin/python3 -m venv " + finalV + "\n",
		"bin/app":                       "#!" + finalV + "/bin/python\nimport sys\n",
		"bin/activate":                  "VIRTUAL_ENV='" + finalV + "'\nexport VIRTUAL_ENV\n",
		"bin/activate.csh":              "setenv VIRTUAL_ENV '" + finalV + "'\n",
		"bin/activate.fish":             "set -gx VIRTUAL_ENV '" + finalV + "'\n",
		"bin/Activate.ps1":              "$VenvDir = Get-Item -Path $PSScriptRoot\n",
		sp + "extra.pth":                finalV + "/src\n",
		sp + "proj.egg-link":            finalV + "/src\n.\n",
		sp + "app-1.0.dist-info/RECORD": "../../../bin/app," + h + "," + strconv.FormatInt(n, 10) + "\r\napp-1.0.dist-info/RECORD,,\r\n",
	}
	for p, c := range want {
		got, err := os.ReadFile(filepath.Join(stage, p))
		if err != nil || string(got) != c {
			t.Errorf("%s = %q, %v; want %q", p, got, err, c)
		}
	}
	if st, _ := os.Stat(filepath.Join(stage, "bin/app")); st.Mode().Perm() != 0o755 {
		t.Errorf("bin/app lost its mode: %v", st.Mode())
	}
	for p, target := range map[string]string{"bin/linked": finalV + "/lib/tool", "bin/python3": "/usr/bin/python3"} {
		if got, _ := os.Readlink(filepath.Join(stage, p)); got != target {
			t.Errorf("%s -> %q, want %q", p, got, target)
		}
	}
	if err := verifyNoLeak(stage, []string{stage, stageRoot + "/"}); err != nil {
		t.Error(err)
	}

	// A binary file that mentions the stage cannot be rewritten: the check
	// must name it.
	bin := append([]byte("\x7fELF\x00\x00"), stage...)
	if err := os.WriteFile(filepath.Join(stage, sp, "ext.so"), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := relocateTree(stage, stage, finalV, "/usr/bin"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(stage, sp, "ext.so"))
	if !bytes.Equal(got, bin) {
		t.Error("a binary file was rewritten")
	}
	err := verifyNoLeak(stage, []string{stage})
	if err == nil || !strings.Contains(err.Error(), sp+"ext.so") {
		t.Errorf("verifyNoLeak = %v, want it to name %s", err, sp+"ext.so")
	}
}

func TestRelocateTreeRejectsForeignHome(t *testing.T) {
	stage := filepath.Join(t.TempDir(), "stage") + finalV
	writeTree(t, stage, map[string]string{"pyvenv.cfg": "home = /home/dev/.pyenv/versions/3.11.7/bin\n"})
	err := relocateTree(stage, stage, finalV, "/usr/bin")
	if err == nil || !strings.Contains(err.Error(), "pyenv") {
		t.Fatalf("err = %v, want a complaint about the pyenv home", err)
	}
}
