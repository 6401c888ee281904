package venv

import (
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gitlab.com/debship/debship/internal/testenv"
)

func TestChildEnv(t *testing.T) {
	base := []string{
		"PATH=/home/dev/.pyenv/shims:/usr/bin", "HOME=/root",
		"PYTHONHOME=/x", "PYTHONPATH=/y", "VIRTUAL_ENV=/v", "PYTHONSTARTUP=/s", "PYTHONUSERBASE=/u",
		"PYTHONNOUSERSITE=0", "PYTHONDONTWRITEBYTECODE=", "_PIP_RUNNING_IN_SUBPROCESS=1",
		"PIP_INDEX_URL=https://mirror.example/simple", "PIP_CERT=/etc/ssl/certs/ca.crt", "PIP_USER=1", "PIP_PYTHON=/usr/bin/python2",
		"PIP_NO_INPUT=0", "SOURCE_DATE_EPOCH=5",
	}
	env := childEnv(base, 1700000000)
	get := func(k string) (string, int) {
		v, n := "", 0
		for _, kv := range env {
			if key, val, _ := strings.Cut(kv, "="); key == k {
				v, n = val, n+1
			}
		}
		return v, n
	}
	for _, k := range []string{"PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONUSERBASE", "_PIP_RUNNING_IN_SUBPROCESS", "PIP_USER", "PIP_PYTHON"} {
		if v, n := get(k); n != 0 {
			t.Errorf("%s=%s passed to children", k, v)
		}
	}
	for k, want := range map[string]string{
		"PATH":                          "/home/dev/.pyenv/shims:/usr/bin",
		"PYTHONNOUSERSITE":              "1",
		"PYTHONDONTWRITEBYTECODE":       "1",
		"PIP_INDEX_URL":                 "https://mirror.example/simple",
		"PIP_CERT":                      "/etc/ssl/certs/ca.crt",
		"PIP_NO_INPUT":                  "0", // the user's choice wins
		"PIP_DISABLE_PIP_VERSION_CHECK": "1",
		"SOURCE_DATE_EPOCH":             "1700000000",
	} {
		if v, n := get(k); v != want || n != 1 {
			t.Errorf("%s = %q (%d times), want %q once", k, v, n, want)
		}
	}
	if got := childEnvSDE(base); got != "5" {
		t.Errorf("without an epoch of ours, the caller's SOURCE_DATE_EPOCH should pass: got %q", got)
	}
}

// childEnvSDE is the SOURCE_DATE_EPOCH children get when no epoch is set:
// the caller's own.
func childEnvSDE(base []string) string {
	for _, kv := range childEnv(base, 0) {
		if v, ok := strings.CutPrefix(kv, "SOURCE_DATE_EPOCH="); ok {
			return v
		}
	}
	return ""
}

func TestInterpreterCheck(t *testing.T) {
	good := interpreter{Version: "3.11", Venv: true, Ensurepip: true, Pip: "23.0.1", BaseExecutable: "/usr/bin/python3"}
	tests := []struct {
		name    string
		python  string
		mod     func(*interpreter)
		keepPip bool
		want    string
	}{
		{"ok", "/usr/bin/python3", func(*interpreter) {}, true, ""},
		{"no ensurepip without KeepPip is fine", "/usr/bin/python3", func(i *interpreter) { i.Ensurepip = false }, false, ""},
		{"no ensurepip with KeepPip", "/usr/bin/python3", func(i *interpreter) { i.Ensurepip = false }, true, `"apt-get install python3-venv"`},
		{"no ensurepip, versioned interpreter", "/usr/bin/python3.11", func(i *interpreter) { i.Ensurepip, i.BaseExecutable = false, "/usr/bin/python3.11" }, true, `"apt-get install python3.11-venv"`},
		{"no venv module", "/usr/bin/python3", func(i *interpreter) { i.Venv = false }, false, `"apt-get install python3-venv"`},
		{"no pip", "/usr/bin/python3", func(i *interpreter) { i.Pip = "" }, false, `"apt-get install python3-pip"`},
		{"old pip", "/usr/bin/python3", func(i *interpreter) { i.Pip = "20.3.4" }, false, "too old"},
		{"a venv's python", "/srv/venv/bin/python3", func(i *interpreter) { i.InVenv, i.BaseExecutable = true, "/srv/venv/bin/python3" }, false, "belongs to a virtualenv"},
		{"pyenv shim", "/home/dev/.pyenv/shims/python3", func(i *interpreter) { i.BaseExecutable = "/home/dev/.pyenv/versions/3.11.7/bin/python3" }, false, "shim or wrapper"},
		{"odd version", "/usr/bin/python3", func(i *interpreter) { i.Version = "3" }, false, "unexpected Python version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good
			tt.mod(&in)
			err := in.check(tt.python, tt.keepPip)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %s", err, tt.want)
			}
		})
	}
}

func TestProbeRejectsRelativeAndMissing(t *testing.T) {
	for python, want := range map[string]string{
		"python3":                 "absolute path",
		"/nonexistent/python3.99": `"apt-get install python3"`,
	} {
		_, err := probePython(context.Background(), sandbox{}, python, nil, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("probePython(%q) = %v, want %s", python, err, want)
		}
	}
}

func TestPythonDepends(t *testing.T) {
	got, err := pythonDepends("3.11")
	if err != nil || !slices.Equal(got, []string{"python3 (>= 3.11)", "python3 (<< 3.12)"}) {
		t.Errorf("got %v, %v", got, err)
	}
	got, _ = pythonDepends("3.9")
	if !slices.Equal(got, []string{"python3 (>= 3.9)", "python3 (<< 3.10)"}) {
		t.Errorf("got %v", got)
	}
	if _, err := pythonDepends("three"); err == nil {
		t.Error("no error for a bad version")
	}
}

func TestPipAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"23.0.1": true, "22.3": true, "22.3.1": true, "22.2.2": false, "9.0.1": false, "24.0b1": true, "22.3rc1": true, "x": false} {
		if got := pipAtLeast(v, minPip); got != want {
			t.Errorf("pipAtLeast(%q) = %v", v, got)
		}
	}
}

func TestTailLines(t *testing.T) {
	tl := &tailLines{n: 3}
	io.WriteString(tl, "one\ntwo\n\nthr")
	io.WriteString(tl, "ee\r\nfour\nfive")
	if got := tl.String(); got != "three\nfour\nfive" {
		t.Errorf("got %q", got)
	}
}

func TestOptionsNormalize(t *testing.T) {
	project := t.TempDir()
	writeTree(t, project, map[string]string{"pyproject.toml": "[project]\nname='x'\n"})
	ok := Options{ProjectDir: project, VenvDir: "/opt/venvs/x", StageRoot: "/tmp/s"}
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"ok", func(*Options) {}, ""},
		{"no pyproject", func(o *Options) { o.ProjectDir = t.TempDir() }, "no pyproject.toml"},
		{"relative venv dir", func(o *Options) { o.VenvDir = "opt/venvs/x" }, "clean absolute path"},
		{"venv dir with space", func(o *Options) { o.VenvDir = "/opt/my venv" }, "clean absolute path"},
		{"venv dir with ..", func(o *Options) { o.VenvDir = "/opt/../x" }, "clean absolute path"},
		{"venv dir too long", func(o *Options) { o.VenvDir = "/opt/" + strings.Repeat("v", 120) }, "too long"},
		{"stage root /", func(o *Options) { o.StageRoot = "/" }, "other than /"},
		{"relative stage root", func(o *Options) { o.StageRoot = "stage" }, "absolute"},
		{"quote in stage root", func(o *Options) { o.StageRoot = "/tmp/it's" }, "quotes"},
		{"bad extra", func(o *Options) { o.Extras = []string{"web]; rm -rf"} }, "not a valid extra"},
		{"missing requirements", func(o *Options) { o.Requirements = "/nonexistent/req.txt" }, "requirements file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			err := o.normalize()
			if tt.want == "" {
				if err != nil || o.Python != DefaultPython || o.Log == nil {
					t.Fatalf("err = %v, Python = %q", err, o.Python)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestIndexArgs(t *testing.T) {
	o := Options{IndexURL: "https://m/simple", ExtraIndexURLs: []string{"https://e1", "https://e2"},
		FindLinks: []string{"/w1", "https://w2"}, NoIndex: true, NoBuildIsolation: true}
	got := strings.Join(o.indexArgs(), " ")
	want := "--index-url https://m/simple --extra-index-url https://e1 --extra-index-url https://e2 --find-links /w1 --find-links https://w2"
	if !strings.HasPrefix(got, want) {
		t.Errorf("got %q, want it to start with %q", got, want)
	}
	for _, w := range []string{"--no-index", "--no-build-isolation", "--use-pep517"} {
		if !strings.Contains(got, w) {
			t.Errorf("%q lacks %s", got, w)
		}
	}
}

func TestParseMetadataAndRequirements(t *testing.T) {
	m, err := parseMetadata(strings.NewReader("Metadata-Version: 2.1\nName: Hello_App\nVersion: 2.4.1\n" +
		"Requires-Dist: greetlib>=0.1\nRequires-Dist: setuptools ; extra == 'legacy'\nProvides-Extra: legacy\n" +
		"Description: folded\n  Requires-Dist: not-a-header\n\nRequires-Dist: body-not-header\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "Hello_App" || m.Version != "2.4.1" || len(m.RequiresDist) != 2 || !slices.Equal(m.Extras, []string{"legacy"}) {
		t.Errorf("got %+v", m)
	}
	if _, err := parseMetadata(strings.NewReader("Name: x\n")); err == nil {
		t.Error("no error without Version")
	}
	for in, want := range map[string]requirement{
		"Setuptools>=40": {Name: "setuptools"},
		"zope.interface[x] (>=5); python_version<'3.12'": {Name: "zope-interface", Marker: "python_version<'3.12'"},
		"pip ; extra == \"dev\"":                         {Name: "pip", Marker: `extra == "dev"`},
	} {
		if got, ok := parseRequirement(in); !ok || got != want {
			t.Errorf("parseRequirement(%q) = %+v, %v", in, got, ok)
		}
	}
}

func TestPruneInstallTools(t *testing.T) {
	meta := func(name string, reqs ...string) string {
		s := "Metadata-Version: 2.1\nName: " + name + "\nVersion: 1.0\n"
		for _, r := range reqs {
			s += "Requires-Dist: " + r + "\n"
		}
		return s
	}
	tests := []struct {
		name     string
		reqs     []string // the project's Requires-Dist
		extras   []string
		kept     []string
		warnings int
	}{
		{"nothing needs them", []string{"greetlib"}, nil, nil, 0},
		{"needed unconditionally", []string{"setuptools>=40"}, nil, []string{"setuptools"}, 1},
		{"needed by an unrequested extra", []string{"setuptools; extra == 'legacy'"}, nil, nil, 0},
		{"needed by a requested extra", []string{"setuptools; extra == 'legacy'"}, []string{"Legacy"}, []string{"setuptools"}, 1},
		{"platform markers count", []string{"wheel; python_version >= '3'"}, nil, []string{"wheel"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "v")
			sp := filepath.Join(root, "lib/python3.11/site-packages")
			files := map[string]string{
				"bin/app": "#!/x\n",
				"lib/python3.11/site-packages/app-1.0.dist-info/METADATA": meta("app", tt.reqs...),
				"lib/python3.11/site-packages/app-1.0.dist-info/RECORD":   "",
			}
			for _, tool := range installTools {
				d := "lib/python3.11/site-packages/" + tool + "-1.0.dist-info/"
				files[d+"METADATA"] = meta(tool)
				files["lib/python3.11/site-packages/"+tool+"/__init__.py"] = ""
				files["lib/python3.11/site-packages/"+tool+"/sub/mod.py"] = ""
				files["bin/"+tool] = "#!/x\n"
				files[d+"RECORD"] = "../../../bin/" + tool + ",sha256=x,5\n" + tool + "/__init__.py,,\n" + tool + "/sub/mod.py,,\n" +
					tool + "/sub/__pycache__/mod.cpython-311.pyc,,\n" + tool + "-1.0.dist-info/METADATA,,\n" + tool + "-1.0.dist-info/RECORD,,\n"
			}
			files["lib/python3.11/site-packages/distutils-precedence.pth"] = "import _distutils_hack\n"
			files["lib/python3.11/site-packages/setuptools-1.0.dist-info/RECORD"] += "distutils-precedence.pth,,\n"
			writeTree(t, root, files)
			warnings, err := pruneInstallTools(root, sp, "app", tt.extras)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != tt.warnings {
				t.Errorf("warnings = %q", warnings)
			}
			for _, tool := range installTools {
				_, errPkg := os.Stat(filepath.Join(sp, tool))
				_, errBin := os.Stat(filepath.Join(root, "bin", tool))
				_, errInfo := os.Stat(filepath.Join(sp, tool+"-1.0.dist-info"))
				present := errPkg == nil && errBin == nil && errInfo == nil
				gone := errors.Is(errPkg, os.ErrNotExist) && errors.Is(errBin, os.ErrNotExist) && errors.Is(errInfo, os.ErrNotExist)
				if want := slices.Contains(tt.kept, tool); want && !present || !want && !gone {
					t.Errorf("%s: want kept=%v, got pkg %v, bin %v, dist-info %v", tool, want, errPkg, errBin, errInfo)
				}
			}
			_, err = os.Stat(filepath.Join(sp, "distutils-precedence.pth"))
			if keep := slices.Contains(tt.kept, "setuptools"); keep != (err == nil) {
				t.Errorf("distutils-precedence.pth: kept=%v, stat %v", keep, err)
			}
			if _, err := os.Stat(filepath.Join(root, "bin", "app")); err != nil {
				t.Errorf("the app's script went too: %v", err)
			}
		})
	}
}

func TestEntryPointNames(t *testing.T) {
	ep := "[console_scripts]\nhello = hello.cli:main\nhello-admin=hello.admin:main\n\n[gui_scripts]\nhello-gui = hello.gui:main\n[other]\n# c\nx = y\n"
	if got := entryPointNames([]byte(ep), "console_scripts"); !slices.Equal(got, []string{"hello", "hello-admin"}) {
		t.Errorf("got %v", got)
	}
}

func TestRemoveBytecode(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"a/__init__.py": "", "a/__pycache__/__init__.cpython-311.pyc": "x", "a/b/__pycache__/m.cpython-311.opt-1.pyc": "x",
		"legacy.pyc": "x", "old.pyo": "x", "keep.py": "",
	})
	if err := removeBytecode(root); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, root)
	var names []string
	for p := range got {
		names = append(names, p)
	}
	slices.Sort(names)
	if want := []string{".", "a", "a/__init__.py", "a/b", "keep.py"}; !slices.Equal(names, want) {
		t.Errorf("left %v, want %v", names, want)
	}
}

func TestFileContainsAcrossChunks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	needle := []byte("/tmp/stage/opt/venvs/app")
	data := make([]byte, 3<<20)
	off := 1<<20 - 5 // straddles the first chunk boundary
	copy(data[off:], needle)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := fileContains(p, [][]byte{[]byte("nope"), needle}); !ok || err != nil {
		t.Errorf("fileContains = %v, %v; want a match across the seam", ok, err)
	}
	if ok, _ := fileContains(p, [][]byte{[]byte("/tmp/other")}); ok {
		t.Error("false match")
	}
}

func TestClampTimesAndModes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "v")
	writeTree(t, root, map[string]string{"bin/app": "#!/x\n", "bin/python3": "->/usr/bin/python3", "lib/m.py": "", "lib/dangling": "->nowhere"})
	if err := os.Chmod(filepath.Join(root, "lib/m.py"), 0o664); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "bin/app"), 0o775); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "lib"), 0o775); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat("/usr/bin/python3")
	if err := normalizeModes(root); err != nil {
		t.Fatal(err)
	}
	if err := clampTimes(root, testEpoch); err != nil {
		t.Fatal(err)
	}
	for p, e := range snapshot(t, root) {
		if e.mtime != testEpoch {
			t.Errorf("%s: mtime %d", p, e.mtime)
		}
		want := map[string]os.FileMode{"bin/app": 0o755, "lib/m.py": 0o644, "lib": os.ModeDir | 0o755}[p]
		if want != 0 && e.mode != want {
			t.Errorf("%s: mode %v, want %v", p, e.mode, want)
		}
	}
	if after, err := os.Stat("/usr/bin/python3"); err == nil && !after.ModTime().Equal(before.ModTime()) {
		t.Error("clampTimes followed a symlink out of the venv")
	}
}

func TestELFHelpers(t *testing.T) {
	ld := parseLdconfig(strings.NewReader(`1234 libs found in cache ` + "`/etc/ld.so.cache'" + `
	libssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3
	libc.so.6 (libc6) => /lib/i386-linux-gnu/libc.so.6
	libc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
Cache generated by: ldconfig (GNU libc) stable release version 2.36
`))
	if len(ld["libc.so.6"]) != 2 || ld["libssl.so.3"][0].Path != "/lib/x86_64-linux-gnu/libssl.so.3" {
		t.Fatalf("parseLdconfig = %+v", ld)
	}
	if got := parseDpkgS([]byte("libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6\n"), "/lib/x86_64-linux-gnu/libc.so.6"); got != "libc6" {
		t.Errorf("parseDpkgS = %q", got)
	}
	if got := parseDpkgS([]byte("diversion by foo from: /usr/lib/x.so\nlibx1:amd64, libx1-alt: /usr/lib/x.so\n"), "/usr/lib/x.so"); got != "libx1" {
		t.Errorf("parseDpkgS with diversion = %q", got)
	}
	if got := candidates("/nonexistent/usr/lib/x.so", filepath.EvalSymlinks); !slices.Contains(got, "/usr/nonexistent/usr/lib/x.so") {
		t.Errorf("candidates = %v", got)
	}
	if got := candidates("/usr/lib/x86_64-linux-gnu/libz.so.1", filepath.EvalSymlinks); !slices.Contains(got, "/lib/x86_64-linux-gnu/libz.so.1") {
		t.Errorf("candidates = %v", got)
	}

	objs := []elfObject{
		{Rel: "lib/python3.11/site-packages/np/core.so", Needed: []string{"libc.so.6", "libopenblas-r0.so", "libssl.so.3", "libgone.so.1"}, Machine: elf.EM_X86_64, Class: elf.ELFCLASS64},
		{Rel: "lib/python3.11/site-packages/np.libs/libopenblas-r0.so", Soname: "libopenblas-r0.so", Needed: []string{"libm.so.6", "libc.so.6"}, Machine: elf.EM_X86_64, Class: elf.ELFCLASS64},
	}
	local := map[string]bool{"libopenblas-r0.so": true}
	dpkgCalls := 0
	r := &shlibResolver{
		cache: map[string]string{}, errs: map[string]string{},
		ldconfig: func(context.Context) (io.Reader, error) {
			return strings.NewReader("\tlibc.so.6 (libc6) => /lib/i386-linux-gnu/libc.so.6\n\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3\n"), nil
		},
		owner: func(_ context.Context, p string) (string, error) {
			dpkgCalls++
			switch p {
			case "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6":
				return "libc6", nil
			case "/usr/lib/x86_64-linux-gnu/libssl.so.3": // shipped under /usr, found by ldconfig under /lib
				return "libssl3", nil
			}
			return "", errors.New("not found")
		},
		exists: func(p string) bool { return p == "/lib/x86_64-linux-gnu/libm.so.6" },
	}
	pkgs, warnings := sharedLibDepends(context.Background(), r, objs, local)
	if !slices.Equal(pkgs, []string{"libc6", "libssl3"}) {
		t.Errorf("packages = %v", pkgs)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "libgone.so.1") || !strings.Contains(warnings[0], "np/core.so") {
		t.Errorf("warnings = %q", warnings)
	}
	calls := dpkgCalls
	r.resolve(context.Background(), "libssl.so.3", elf.EM_X86_64, elf.ELFCLASS64)
	if dpkgCalls != calls {
		t.Error("a resolved soname was looked up again")
	}
}

func TestScanELF(t *testing.T) {
	testenv.NeedFile(t, "/usr/bin/true")
	root := t.TempDir()
	data, err := os.ReadFile("/usr/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, root, map[string]string{
		"lib/site-packages/tool/true.bin":       string(data),
		"lib/site-packages/tool.libs/libc.so.6": "not really a library",
		"lib/site-packages/tool/__init__.py":    "\x7fEL",
		"bin/python3":                           "->/usr/bin/python3",
	})
	objs, local, warnings, err := scanELF(root)
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	if len(objs) != 1 || objs[0].Rel != "lib/site-packages/tool/true.bin" || !slices.Contains(objs[0].Needed, "libc.so.6") {
		t.Fatalf("objs = %+v", objs)
	}
	if sonames, _ := externalNeeds(objs, local); len(sonames) != 0 {
		t.Errorf("the bundled libc.so.6 in tool.libs/ should satisfy the need, got %v", sonames)
	}
}
