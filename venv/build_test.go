package venv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/testenv"
)

const testEpoch = 1700000000

// needDebianPython returns the probe of /usr/bin/python3, or marks the
// test as missing its prerequisites (python3, python3-venv, python3-pip,
// python3-setuptools-whl / python3-wheel-whl for offline isolated builds).
func needDebianPython(t *testing.T, keepPip bool) *interpreter {
	t.Helper()
	testenv.NeedFile(t, DefaultPython, filepath.Join(DebianWheels))
	py, err := probePython(context.Background(), sandbox{}, DefaultPython, childEnv(os.Environ(), 0), keepPip)
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	for _, w := range []string{"setuptools-*.whl", "wheel-*.whl"} {
		if m, _ := filepath.Glob(filepath.Join(DebianWheels, w)); len(m) == 0 {
			testenv.Missing(t, "%s/%s (apt-get install python3-setuptools-whl python3-wheel-whl)", DebianWheels, w)
		}
	}
	return py
}

// buildLocalWheel builds a project into dir with the system pip, offline,
// the way a user would prepare a --find-links directory.
func buildLocalWheel(t *testing.T, project, dir string) {
	t.Helper()
	err := runTool(context.Background(), sandbox{}, project, childEnv(os.Environ(), 0), nil, false, DefaultPython,
		"-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation", "--wheel-dir", dir, project)
	if err != nil {
		t.Fatalf("build wheel of %s: %v", project, err)
	}
}

// writeProjects writes the application (dynamic version, console script,
// package data, a dependency and an extra) and its two dependencies, built
// into a find-links directory. It returns the project dir and find-links dir.
func writeProjects(t *testing.T) (project, links string) {
	t.Helper()
	root := t.TempDir()
	links = filepath.Join(root, "wheels")
	for _, dep := range []struct{ name, mod, greeting string }{
		{"greetlib", "greetlib", "hello"},
		{"shoutlib", "shoutlib", "HELLO"},
	} {
		dir := filepath.Join(root, dep.name)
		writeTree(t, dir, map[string]string{
			"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "` + dep.name + `"
version = "0.1"
`,
			dep.mod + "/__init__.py": "GREETING = " + fmt.Sprintf("%q", dep.greeting) + "\n",
		})
		buildLocalWheel(t, dir, links)
	}
	project = filepath.Join(root, "hello-app")
	writeTree(t, project, map[string]string{
		"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "hello-app"
dynamic = ["version"]
requires-python = ">=3.9"
dependencies = ["greetlib>=0.1"]

[project.optional-dependencies]
loud = ["shoutlib"]
dev = ["wheel"]

[project.scripts]
hello-app = "hello_app.cli:main"

[tool.setuptools.dynamic]
version = {attr = "hello_app.__version__"}

[tool.setuptools.package-data]
hello_app = ["data/*.txt"]
`,
		"src/hello_app/__init__.py":   "__version__ = \"2.4.1\"\n",
		"src/hello_app/data/motd.txt": "message of the day\n",
		"src/hello_app/cli.py": `import sys
from importlib import resources

import greetlib

import hello_app


def main():
    motd = resources.files("hello_app").joinpath("data/motd.txt").read_text().strip()
    print(greetlib.GREETING, hello_app.__version__, motd, sys.prefix)
    return 0
`,
	})
	return project, links
}

func TestBuildIntegration(t *testing.T) {
	t.Parallel()
	py := needDebianPython(t, false)
	project, links := writeProjects(t)
	// The final path must exist for the console script's shebang to run, so
	// it lives in a temp dir; the staging root is another one.
	venvDir := filepath.Join(t.TempDir(), "hello-app")
	// Pins for the dependency, plus wheel (found in Debian's wheel dir),
	// which nothing needs at run time and so must be pruned again.
	reqs := filepath.Join(t.TempDir(), "requirements.txt")
	if err := os.WriteFile(reqs, []byte("greetlib==0.1\nwheel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	opts := Options{
		ProjectDir:      project,
		Requirements:    reqs,
		VenvDir:         venvDir,
		Extras:          []string{"loud"},
		FindLinks:       []string{links},
		NoIndex:         true,
		SourceDateEpoch: testEpoch,
		Log:             &log,
	}
	build := func(stageRoot string) *Result {
		t.Helper()
		o := opts
		o.StageRoot = stageRoot
		start := time.Now()
		res, err := Build(context.Background(), o)
		if err != nil {
			t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
		}
		t.Logf("Build took %s", time.Since(start).Round(time.Millisecond))
		return res
	}
	stage1 := filepath.Join(t.TempDir(), "stage")
	res := build(stage1)
	stageVenv := filepath.Join(stage1, venvDir)
	if res.StageDir != stageVenv {
		t.Errorf("StageDir = %s, want %s", res.StageDir, stageVenv)
	}

	wantDeps := []string{fmt.Sprintf("python3 (>= %s)", py.Version), fmt.Sprintf("python3 (<< %s)", nextMinor(t, py.Version))}
	if res.PythonVersion != py.Version || !slices.Equal(res.PythonDepends, wantDeps) {
		t.Errorf("python = %s %v, want %s %v", res.PythonVersion, res.PythonDepends, py.Version, wantDeps)
	}
	if res.ProjectName != "hello-app" || res.ProjectVersion != "2.4.1" {
		t.Errorf("project = %s %s, want hello-app 2.4.1 (dynamic version from the attr)", res.ProjectName, res.ProjectVersion)
	}
	if !slices.Equal(res.ConsoleScripts, []string{"hello-app"}) {
		t.Errorf("ConsoleScripts = %v", res.ConsoleScripts)
	}
	if res.ArchDependent || len(res.SharedLibDepends) > 0 {
		t.Errorf("pure Python venv: ArchDependent = %v, SharedLibDepends = %v", res.ArchDependent, res.SharedLibDepends)
	}
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	if !strings.Contains(log.String(), "venv: ") {
		t.Errorf("no progress lines in the log: %q", log.String())
	}
	for _, left := range []string{"build", "src/hello_app.egg-info"} {
		if _, err := os.Stat(filepath.Join(project, left)); err == nil {
			t.Errorf("the wheel build left %s in the project", left)
		}
	}

	checkShippable(t, stageVenv, stage1, false)
	checkPyvenvCfg(t, stageVenv)
	for _, dist := range []string{"greetlib", "shoutlib", "hello_app"} {
		if m, _ := filepath.Glob(filepath.Join(stageVenv, "lib", "python"+py.Version, "site-packages", dist+"-*.dist-info")); len(m) != 1 {
			t.Errorf("%s is not installed in the venv (got %v)", dist, m)
		}
	}
	if _, err := os.Stat(filepath.Join(stageVenv, "lib", "python"+py.Version, "site-packages", "hello_app", "data", "motd.txt")); err != nil {
		t.Errorf("package data missing: %v", err)
	}

	// Two builds of the same project give the same tree, wherever staged.
	stage2 := filepath.Join(t.TempDir(), "other-stage")
	build(stage2)
	a, b := snapshot(t, stageVenv), snapshot(t, filepath.Join(stage2, venvDir))
	if diff := diffSnapshots(a, b); diff != "" {
		t.Errorf("two builds differ:\n%s", diff)
	}

	// Installed at its real path, the console script runs with the venv's
	// python (not the pyenv one first on PATH) and finds data and the dep.
	if err := os.Rename(stageVenv, venvDir); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(venvDir, "bin", "hello-app")).CombinedOutput()
	if err != nil {
		t.Fatalf("hello-app: %v\n%s", err, out)
	}
	if want := "hello 2.4.1 message of the day " + venvDir + "\n"; string(out) != want {
		t.Errorf("hello-app printed %q, want %q", out, want)
	}
	out, err = exec.Command(filepath.Join(venvDir, "bin", "python"), "-c", "import shoutlib, sys; print(shoutlib.GREETING, sys.base_prefix)").CombinedOutput()
	if err != nil || string(out) != "HELLO /usr\n" {
		t.Errorf("extra's dependency: %q, %v", out, err)
	}
}

func TestBuildRejectsUnknownExtra(t *testing.T) {
	t.Parallel()
	needDebianPython(t, false)
	project, links := writeProjects(t)
	_, err := Build(context.Background(), Options{
		ProjectDir: project, VenvDir: "/opt/venvs/hello-app", StageRoot: t.TempDir(),
		Extras: []string{"lowd"}, FindLinks: []string{links}, NoIndex: true, NoBuildIsolation: true,
	})
	if err == nil || !strings.Contains(err.Error(), `no extra "lowd" (it has: dev, loud)`) {
		t.Fatalf("err = %v, want it to name the unknown extra and the known ones", err)
	}
}

func nextMinor(t *testing.T, v string) string {
	major, minor, err := splitMinor(v)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d.%d", major, minor+1)
}

// checkShippable asserts what every built venv must satisfy.
func checkShippable(t *testing.T, venv, stageRoot string, keepPip bool) {
	t.Helper()
	err := filepath.WalkDir(venv, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(venv, p)
		name := d.Name()
		if name == "__pycache__" || strings.HasSuffix(name, ".pyc") {
			t.Errorf("bytecode shipped: %s", rel)
		}
		if !keepPip {
			n := normName(strings.SplitN(name, "-", 2)[0])
			if (d.IsDir() && (n == "pip" || n == "setuptools" || n == "wheel" || name == "_distutils_hack")) ||
				rel == "bin/pip" || rel == "bin/pip3" {
				t.Errorf("install tool shipped: %s", rel)
			}
		}
		if name == "direct_url.json" {
			t.Errorf("direct_url.json shipped: %s", rel)
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if info.ModTime().Unix() != testEpoch {
			t.Errorf("%s: mtime %v, want %d", rel, info.ModTime(), testEpoch)
		}
		var data []byte
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			data = []byte(target)
		case info.Mode().IsRegular():
			if m := info.Mode().Perm(); m != 0o644 && m != 0o755 {
				t.Errorf("%s: mode %v", rel, m)
			}
			data, _ = os.ReadFile(p)
		case info.IsDir():
			if info.Mode().Perm() != 0o755 {
				t.Errorf("%s: mode %v", rel, info.Mode())
			}
		}
		if bytes.Contains(data, []byte(stageRoot)) {
			t.Errorf("%s mentions the staging root %s", rel, stageRoot)
		}
		if strings.HasSuffix(filepath.Dir(p), ".dist-info") && name == "RECORD" {
			checkRecord(t, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkRecord asserts that every RECORD entry names an existing file with
// the recorded hash and size.
func checkRecord(t *testing.T, rec string) {
	t.Helper()
	f, err := os.Open(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", rec, err)
	}
	base := filepath.Dir(filepath.Dir(rec))
	for _, row := range rows {
		p := filepath.Join(base, row[0])
		g, err := os.Open(p)
		if err != nil {
			t.Errorf("%s lists %s: %v", filepath.Base(filepath.Dir(rec)), row[0], err)
			continue
		}
		h, n, _ := recordHash(bufio.NewReader(g))
		g.Close()
		if len(row) >= 3 && row[1] != "" && (row[1] != h || row[2] != fmt.Sprint(n)) {
			t.Errorf("%s: %s recorded as %s,%s but is %s,%d", filepath.Base(filepath.Dir(rec)), row[0], row[1], row[2], h, n)
		}
	}
}

func checkPyvenvCfg(t *testing.T, venv string) {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(venv, "pyvenv.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "home = /usr/bin\n") {
		t.Errorf("pyvenv.cfg does not say home = /usr/bin:\n%s", cfg)
	}
	if strings.Contains(string(cfg), ".pyenv") {
		t.Errorf("pyvenv.cfg mentions pyenv:\n%s", cfg)
	}
	if target, _ := os.Readlink(filepath.Join(venv, "bin", "python3")); target != DefaultPython {
		t.Errorf("bin/python3 -> %q, want %s", target, DefaultPython)
	}
}

type entry struct {
	mode    fs.FileMode
	content string
	mtime   int64
}

func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := entry{mode: info.Mode(), mtime: info.ModTime().Unix()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.content, err = os.Readlink(p)
		case info.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			e.content = string(b)
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(a, b map[string]entry) string {
	var diffs []string
	for p, ea := range a {
		eb, ok := b[p]
		switch {
		case !ok:
			diffs = append(diffs, "only in the first: "+p)
		case ea != eb:
			diffs = append(diffs, fmt.Sprintf("%s: %v %d vs %v %d (content equal: %v)", p, ea.mode, ea.mtime, eb.mode, eb.mtime, ea.content == eb.content))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			diffs = append(diffs, "only in the second: "+p)
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "\n")
}

// The pyenv python3 first on PATH on developer machines is exactly what
// Build must not pick: by name it is refused, and its shim by path too.
func TestBuildRejectsPathPython(t *testing.T) {
	project := t.TempDir()
	writeTree(t, project, map[string]string{"pyproject.toml": "[project]\nname = 'x'\nversion = '1'\n"})
	pythons := []string{"python3"}
	if p, err := exec.LookPath("python3"); err == nil && strings.Contains(p, "/.pyenv/shims/") {
		pythons = append(pythons, p)
	}
	for _, python := range pythons {
		_, err := Build(context.Background(), Options{
			ProjectDir: project, Python: python, VenvDir: "/opt/venvs/x", StageRoot: t.TempDir(),
		})
		if err == nil {
			t.Errorf("Build accepted %s", python)
		} else {
			t.Logf("%s: %v", python, err)
		}
	}
}

func TestBuildKeepPip(t *testing.T) {
	t.Parallel()
	needDebianPython(t, true)
	project, links := writeProjects(t)
	venvDir := filepath.Join(t.TempDir(), "app")
	// A space and a long staging path make pip (and ensurepip) write
	// /bin/sh trampolines instead of shebangs; relocation must undo them.
	stageRoot := filepath.Join(t.TempDir(), "stage with space", strings.Repeat("long", 20))
	res, err := Build(context.Background(), Options{
		ProjectDir: project, VenvDir: venvDir, StageRoot: stageRoot, KeepPip: true,
		FindLinks: []string{links}, NoIndex: true, NoBuildIsolation: true, SourceDateEpoch: testEpoch,
	})
	if err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(stageRoot, venvDir)
	checkShippable(t, stage, stageRoot, true)
	checkPyvenvCfg(t, stage)
	if !slices.Contains(res.ConsoleScripts, "pip") || !slices.Contains(res.ConsoleScripts, "hello-app") {
		t.Errorf("ConsoleScripts = %v, want pip and hello-app", res.ConsoleScripts)
	}
	for _, script := range res.ConsoleScripts {
		data, err := os.ReadFile(filepath.Join(stage, "bin", script))
		if first, _, _ := strings.Cut(string(data), "\n"); err != nil || !strings.HasPrefix(first, "#!"+venvDir+"/bin/python") || strings.Contains(string(data), "'''exec'") {
			t.Errorf("bin/%s starts with %q, want a plain shebang", script, first)
		}
	}
	if err := os.Rename(stage, venvDir); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(venvDir, "bin", "pip"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), venvDir) {
		t.Errorf("the shipped pip does not run from %s: %v\n%s", venvDir, err, out)
	}
}

func TestBuildPipFailureShowsItsOutput(t *testing.T) {
	t.Parallel()
	needDebianPython(t, false)
	project := t.TempDir()
	writeTree(t, project, map[string]string{
		"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "needs-missing"
version = "1.0"
dependencies = ["no-such-dist-debship"]
`,
		"needs_missing.py": "",
	})
	_, err := Build(context.Background(), Options{
		ProjectDir: project, VenvDir: "/opt/venvs/needs-missing", StageRoot: t.TempDir(), NoIndex: true,
	})
	if err == nil {
		t.Fatal("Build succeeded without the dependency")
	}
	for _, want := range []string{"build venv: install needs-missing", "no-such-dist-debship", "last lines"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestBuildCExtension(t *testing.T) {
	t.Parallel()
	py := needDebianPython(t, false)
	testenv.NeedCommand(t, "gcc", "dpkg-query")
	testenv.NeedFile(t, "/usr/include/python"+py.Version+"/Python.h")
	project := t.TempDir()
	writeTree(t, project, map[string]string{
		"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "fastsqrt"
version = "0.3"
`,
		"setup.py": `from setuptools import Extension, setup

setup(ext_modules=[Extension("fastsqrt", ["fastsqrt.c"], libraries=["m"])])
`,
		"fastsqrt.c": `#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

static PyObject *fs_sqrt(PyObject *self, PyObject *args) {
    double x;
    if (!PyArg_ParseTuple(args, "d", &x)) return NULL;
    return PyFloat_FromDouble(sqrt(x));
}

static PyMethodDef methods[] = {{"sqrt", fs_sqrt, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "fastsqrt", NULL, -1, methods};
PyMODINIT_FUNC PyInit_fastsqrt(void) { return PyModule_Create(&mod); }
`,
	})
	stageRoot := t.TempDir()
	res, err := Build(context.Background(), Options{
		ProjectDir: project, VenvDir: "/opt/venvs/fastsqrt", StageRoot: stageRoot, NoIndex: true, SourceDateEpoch: testEpoch,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.ArchDependent {
		t.Error("ArchDependent = false for a C extension")
	}
	// With dpkg-dev, dpkg-shlibdeps adds the minimum version the symbols need.
	want := "libc6"
	if _, err := exec.LookPath("dpkg-shlibdeps"); err == nil || testenv.InCI() {
		want = "libc6 (>= "
	}
	if !slices.ContainsFunc(res.SharedLibDepends, func(d string) bool { return strings.HasPrefix(d, want) }) {
		t.Errorf("SharedLibDepends = %v, want %q… among them", res.SharedLibDepends, want)
	}
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	stage := filepath.Join(stageRoot, "opt/venvs/fastsqrt")
	checkShippable(t, stage, stageRoot, false)
	out, err := exec.Command(filepath.Join(stage, "bin", "python"), "-c", "import fastsqrt; print(fastsqrt.sqrt(16.0))").CombinedOutput()
	if err != nil || string(out) != "4.0\n" {
		t.Errorf("extension: %q, %v", out, err)
	}
}
