// Package venv builds a relocatable virtualenv for a Python project inside a
// staging root: the project's wheel is built with PEP 517, installed with its
// dependencies into a pip-less venv made by Debian's interpreter, and the
// venv is then relocated to its final path (no byte of the staging path
// remains), pruned, clamped to SOURCE_DATE_EPOCH and scanned for the shared
// libraries its ELF files need.
package venv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultPython is Debian's interpreter. It is never looked up on PATH: a
// pyenv or conda python first on PATH makes a venv that points at an
// interpreter the target host does not have.
const DefaultPython = "/usr/bin/python3"

// DebianWheels is where python3-pip-whl, python3-setuptools-whl and
// python3-wheel-whl put their wheels; with it on --find-links an isolated
// PEP 517 build finds setuptools and wheel without an index.
const DebianWheels = "/usr/share/python-wheels"

// Options says what to build and where.
type Options struct {
	ProjectDir       string   // Python project with pyproject.toml (absolute)
	Python           string   // interpreter by absolute path; default DefaultPython
	VenvDir          string   // final absolute path on the target, e.g. "/opt/venvs/hello-web"
	StageRoot        string   // the venv is made at filepath.Join(StageRoot, VenvDir) and relocated to VenvDir
	Requirements     string   // optional pinned requirements/constraints file, resolved together with the project
	Extras           []string // project extras to install ("web" -> .[web])
	KeepPip          bool     // ship pip (and setuptools/wheel when present); default: the venv has none
	IndexURL         string
	ExtraIndexURLs   []string
	FindLinks        []string // repeatable; relative local paths are taken from the current directory
	NoIndex          bool
	NoBuildIsolation bool
	// BuildIsolation forces pip's isolated build environment for the
	// project's wheel. By default it is skipped when the interpreter's own
	// packages satisfy [build-system] requires (see buildreqs.py).
	BuildIsolation  bool
	SourceDateEpoch int64 // > 0: every mtime in the venv is set to it, and SOURCE_DATE_EPOCH goes to pip and backends
	// Root, when set, is another Debian release's root (a host path): the
	// interpreter is that root's Python, and python, pip, ldconfig,
	// dpkg-query and dpkg-shlibdeps run chrooted into it (which needs
	// root), so the venv, the Python Depends and the library packages are
	// that release's. ProjectDir, StageRoot, Requirements and local
	// FindLinks are host paths below Root; the tools see them without it.
	Root    string
	Log     io.Writer // progress lines; pip output goes here only with Verbose
	Verbose bool
}

// Result describes the venv that was built.
type Result struct {
	PythonVersion    string   // "3.11" (from the interpreter actually used)
	PythonDepends    []string // ["python3 (>= 3.11)", "python3 (<< 3.12)"]
	ProjectName      string   // from the built wheel's METADATA
	ProjectVersion   string   // from the built wheel's METADATA (resolves dynamic versions)
	ConsoleScripts   []string // console script names present in <venv>/bin, sorted
	SharedLibDepends []string // Debian packages providing the external NEEDED libs of ELF files in the venv, sorted
	ArchDependent    bool     // the venv contains an ELF file
	Warnings         []string // e.g. an unmappable library, named

	StageDir string // filepath.Join(StageRoot, VenvDir): where the venv now is
}

// maxVenvDir keeps "#!<VenvDir>/bin/python3.NN\n" within the kernel's 127
// bytes, so every script gets a plain shebang and not a /bin/sh trampoline.
const maxVenvDir = maxShebang - len("#!/bin/python3.11\n") - 1

var (
	venvDirRe = regexp.MustCompile(`^(/[A-Za-z0-9._+-]+)+$`)
	extraRe   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	// Characters that venv and pip would quote or escape in activate scripts
	// and trampolines, where a byte search for the path would then miss it.
	badStageChars = "'\"\\$`\n\r\t"
)

func (o *Options) normalize() error {
	if o.Python == "" {
		o.Python = DefaultPython
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.ProjectDir == "" {
		return errors.New("no project directory given")
	}
	abs, err := filepath.Abs(o.ProjectDir)
	if err != nil {
		return err
	}
	o.ProjectDir = abs
	if _, err := os.Stat(filepath.Join(o.ProjectDir, "pyproject.toml")); err != nil {
		return fmt.Errorf("%s has no pyproject.toml", o.ProjectDir)
	}
	if !venvDirRe.MatchString(o.VenvDir) || filepath.Clean(o.VenvDir) != o.VenvDir || strings.Contains(o.VenvDir, "/.") {
		return fmt.Errorf("venv dir %q must be a clean absolute path of letters, digits and ._+- such as /opt/venvs/hello-web", o.VenvDir)
	}
	if len(o.VenvDir) > maxVenvDir {
		return fmt.Errorf("venv dir %s is longer than %d bytes, too long for a script's #! line", o.VenvDir, maxVenvDir)
	}
	if !filepath.IsAbs(o.StageRoot) || filepath.Clean(o.StageRoot) == "/" {
		return fmt.Errorf("staging root %q must be an absolute path other than /", o.StageRoot)
	}
	o.StageRoot = filepath.Clean(o.StageRoot)
	if strings.ContainsAny(o.StageRoot, badStageChars) {
		return fmt.Errorf("staging root %q must not contain quotes, backslashes, $, backticks or control characters", o.StageRoot)
	}
	if o.Requirements != "" {
		if o.Requirements, err = filepath.Abs(o.Requirements); err != nil {
			return err
		}
		if _, err := os.Stat(o.Requirements); err != nil {
			return fmt.Errorf("requirements file: %w", err)
		}
	}
	for _, e := range o.Extras {
		if !extraRe.MatchString(e) {
			return fmt.Errorf("extra %q is not a valid extra name", e)
		}
	}
	for i, fl := range o.FindLinks {
		if !strings.Contains(fl, "://") {
			if o.FindLinks[i], err = filepath.Abs(fl); err != nil {
				return err
			}
		}
	}
	if o.Root != "" {
		sb := o.sandbox()
		paths := []string{o.ProjectDir, o.StageRoot, o.Requirements}
		for _, fl := range o.FindLinks {
			if !strings.Contains(fl, "://") {
				paths = append(paths, fl)
			}
		}
		for _, p := range paths {
			if p != "" && !sb.inside(p) {
				return fmt.Errorf("%s is outside the build root %s, where the build cannot see it", p, o.Root)
			}
		}
	}
	return nil
}

func (o *Options) sandbox() sandbox { return sandbox{root: o.Root} }

// indexArgs are the pip options that say where packages come from.
func (o *Options) indexArgs() []string {
	var args []string
	if o.IndexURL != "" {
		args = append(args, "--index-url", o.IndexURL)
	}
	for _, u := range o.ExtraIndexURLs {
		args = append(args, "--extra-index-url", u)
	}
	sb := o.sandbox()
	for _, fl := range o.FindLinks {
		if !strings.Contains(fl, "://") {
			fl = sb.in(fl)
		}
		args = append(args, "--find-links", fl)
	}
	// Offline (--no-index or PIP_NO_INDEX) an isolated build still needs
	// setuptools and wheel; Debian ships them as wheels. Online they only
	// compete with the index's newer versions, which pip prefers.
	if st, err := os.Stat(sb.host(DebianWheels)); err == nil && st.IsDir() {
		args = append(args, "--find-links", DebianWheels)
	}
	if o.NoIndex {
		args = append(args, "--no-index")
	}
	if o.NoBuildIsolation {
		args = append(args, "--no-build-isolation")
	}
	// Never "setup.py install" a dependency without pyproject.toml: it writes
	// egg-info with absolute build paths. Build a wheel for it instead.
	args = append(args, "--use-pep517")
	return args
}

// Build makes the venv at filepath.Join(o.StageRoot, o.VenvDir), relocated
// to o.VenvDir. The staging venv dir must not exist or be empty; on failure
// whatever was made there is left for the caller, who owns StageRoot.
func Build(ctx context.Context, o Options) (*Result, error) {
	res, err := build(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("build venv: %w", err)
	}
	return res, nil
}

func build(ctx context.Context, o Options) (*Result, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	start := time.Now()
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, "venv: "+format+"\n", args...) }
	sb := o.sandbox()
	env := childEnv(os.Environ(), o.SourceDateEpoch)
	if sb.root != "" {
		// The host's TMPDIR and HOME need not exist in the root.
		env = append(env, "TMPDIR=/tmp", "HOME=/root")
	}
	project := sb.in(o.ProjectDir)
	run := func(what string, args ...string) error {
		if err := runTool(ctx, sb, project, env, o.Log, o.Verbose, o.Python, args...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}

	py, err := probePython(ctx, sb, o.Python, env, o.KeepPip)
	if err != nil {
		return nil, err
	}
	res := &Result{PythonVersion: py.Version, StageDir: filepath.Join(o.StageRoot, o.VenvDir)}
	if res.PythonDepends, err = pythonDepends(py.Version); err != nil {
		return nil, err
	}
	where := ""
	if sb.root != "" {
		where = " in " + sb.root
	}
	logf("using %s%s (Python %s, pip %s)", o.Python, where, py.FullVersion, py.Pip)
	if filepath.Dir(o.Python) != "/usr/bin" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s is not Debian's interpreter in /usr/bin: the venv links to it, so every target host needs it at that path", o.Python))
	}

	// The wheel: the backend resolves dynamic metadata, and installing a
	// wheel (not the directory) keeps the source path out of the venv.
	tmp, err := sb.tempDir("debship-wheel-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cleanup, stale := removeBuildLeftovers(o.ProjectDir)
	defer cleanup()
	if stale {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s/build/lib exists from an earlier build: setuptools packs whatever it holds into the wheel, so remove it if files were deleted since", o.ProjectDir))
	}
	t := time.Now()
	args := append([]string{"-m", "pip", "wheel", "--no-deps", "--wheel-dir", sb.in(tmp)}, o.indexArgs()...)
	hostBackend := false
	if !o.NoBuildIsolation && !o.BuildIsolation {
		var why string
		if hostBackend, why = hostSatisfiesBuildRequires(ctx, o, env); !hostBackend {
			logf("isolated wheel build: the interpreter lacks %s", why)
		}
	}
	if hostBackend {
		err = run("build the wheel of "+o.ProjectDir+" with pip", append(append(args, "--no-build-isolation"), project)...)
		if err != nil {
			// The backend may ask for more than [build-system] says
			// (get_requires_for_build_wheel); pip's isolation finds it.
			logf("wheel build with the interpreter's own backend failed, retrying isolated")
			os.RemoveAll(tmp)
			if err := os.MkdirAll(tmp, 0o755); err != nil {
				return nil, err
			}
			hostBackend = false
		}
	}
	if !hostBackend {
		if err := run("build the wheel of "+o.ProjectDir+" with pip", append(args, project)...); err != nil {
			return nil, err
		}
	}
	wheels, _ := filepath.Glob(filepath.Join(tmp, "*.whl"))
	if len(wheels) != 1 {
		return nil, fmt.Errorf("pip wheel made %d wheels in %s, want 1", len(wheels), tmp)
	}
	meta, err := wheelMetadata(wheels[0])
	if err != nil {
		return nil, err
	}
	res.ProjectName, res.ProjectVersion = meta.Name, meta.Version
	// pip only warns about an unknown extra and installs without it.
	for _, e := range o.Extras {
		if !slices.ContainsFunc(meta.Extras, func(x string) bool { return normName(x) == normName(e) }) {
			return nil, fmt.Errorf("%s has no extra %q (it has: %s)", meta.Name, e, strings.Join(meta.Extras, ", "))
		}
	}
	logf("built %s (%.1fs)", filepath.Base(wheels[0]), time.Since(t).Seconds())

	stage := res.StageDir
	created, err := makeStageDir(o.StageRoot, stage)
	if err != nil {
		return nil, err
	}
	t = time.Now()
	venvArgs := []string{"-m", "venv"}
	if !o.KeepPip {
		venvArgs = append(venvArgs, "--without-pip")
	}
	if err := run("create the virtualenv", append(venvArgs, sb.in(stage))...); err != nil {
		return nil, err
	}
	args = []string{"-m", "pip", "--python", filepath.Join(sb.in(stage), "bin", "python"), "install",
		"--no-compile", "--no-warn-script-location"}
	args = append(args, o.indexArgs()...)
	// One resolver run for the pins and the project: the pins win or pip
	// says which conflict, instead of a second run silently moving them.
	if o.Requirements != "" {
		args = append(args, "--requirement", sb.in(o.Requirements))
	}
	target := sb.in(wheels[0])
	if len(o.Extras) > 0 {
		target += "[" + strings.Join(o.Extras, ",") + "]"
	}
	if err := run("install "+meta.Name+" and its dependencies into the virtualenv", append(args, target)...); err != nil {
		return nil, err
	}
	logf("installed %s %s into %s (%.1fs)", meta.Name, meta.Version, stage, time.Since(t).Seconds())

	if err := finish(ctx, o, py, res, tmp); err != nil {
		return nil, err
	}
	if o.SourceDateEpoch > 0 {
		for _, dir := range created {
			if err := clampTimes(dir, o.SourceDateEpoch); err != nil {
				return nil, err
			}
		}
	}
	logf("%s ready in %s (%.1fs)", o.VenvDir, o.StageRoot, time.Since(start).Seconds())
	return res, nil
}

// removeBuildLeftovers notes the build/ and *.egg-info dirs of the project
// and returns a func that removes those the wheel build adds. pip builds a
// local project in place, and setuptools copies sources into build/lib and
// packs whatever is there: a file left by an earlier build (say a module
// since deleted) would end up in the next wheel. Dirs the user had are left;
// stale reports a build/lib among them.
func removeBuildLeftovers(project string) (cleanup func(), stale bool) {
	list := func() []string {
		var out []string
		if st, err := os.Stat(filepath.Join(project, "build")); err == nil && st.IsDir() {
			out = append(out, filepath.Join(project, "build"))
		}
		for _, pat := range []string{"*.egg-info", "src/*.egg-info"} {
			m, _ := filepath.Glob(filepath.Join(project, pat))
			out = append(out, m...)
		}
		return out
	}
	before := list()
	if st, err := os.Stat(filepath.Join(project, "build", "lib")); err == nil && st.IsDir() {
		stale = true
	}
	return func() {
		for _, p := range list() {
			if !slices.Contains(before, p) {
				os.RemoveAll(p)
			}
		}
	}, stale
}

// makeStageDir creates the staging venv dir's parents and returns the
// topmost one it created (so its times can be clamped too).
func makeStageDir(stageRoot, stage string) ([]string, error) {
	entries, err := os.ReadDir(stage)
	if err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("staging venv dir %s already exists and is not empty: use a fresh staging root", stage)
	}
	var created []string
	for d := filepath.Dir(stage); len(d) > len(stageRoot); d = filepath.Dir(d) {
		if _, err := os.Lstat(d); errors.Is(err, fs.ErrNotExist) {
			created = []string{d}
		}
	}
	if err := os.MkdirAll(filepath.Dir(stage), 0o755); err != nil {
		return nil, err
	}
	return created, nil
}

// finish turns the installed staging venv into what the package ships.
func finish(ctx context.Context, o Options, py *interpreter, res *Result, wheelDir string) error {
	sb := o.sandbox()
	stage := res.StageDir
	sitePackages := filepath.Join(stage, "lib", "python"+py.Version, "site-packages")
	if st, err := os.Stat(sitePackages); err != nil || !st.IsDir() {
		return fmt.Errorf("the virtualenv has no %s", sitePackages)
	}
	if err := removeBytecode(stage); err != nil {
		return fmt.Errorf("remove bytecode: %w", err)
	}
	if !o.KeepPip {
		warnings, err := pruneInstallTools(stage, sitePackages, res.ProjectName, o.Extras)
		res.Warnings = append(res.Warnings, warnings...)
		if err != nil {
			return err
		}
	}
	if err := removeDirectURLs(sitePackages); err != nil {
		return err
	}
	if err := removeVenvGitignore(stage); err != nil {
		return err
	}
	// Strip before relocation: the RECORD hashes are recomputed there.
	stripWarnings, err := stripDebug(ctx, stage)
	if err != nil {
		return fmt.Errorf("strip ELF files: %w", err)
	}
	res.Warnings = append(res.Warnings, stripWarnings...)
	// The paths in the venv are the ones the interpreter saw.
	if err := relocateTree(stage, sb.in(stage), o.VenvDir, filepath.Dir(o.Python)); err != nil {
		return fmt.Errorf("relocate %s to %s: %w", stage, o.VenvDir, err)
	}
	if err := normalizeModes(stage); err != nil {
		return err
	}
	needles := []string{sb.in(stage), stage, sb.in(wheelDir), wheelDir}
	if !strings.Contains(o.VenvDir, sb.in(o.StageRoot)+"/") {
		needles = append(needles, sb.in(o.StageRoot)+"/")
	}
	if err := verifyNoLeak(stage, needles); err != nil {
		return err
	}

	objs, local, warnings, err := scanELF(stage)
	if err != nil {
		return fmt.Errorf("scan ELF files: %w", err)
	}
	res.Warnings = append(res.Warnings, warnings...)
	if len(objs) > 0 {
		res.ArchDependent = true
		var warns []string
		res.SharedLibDepends, warns = sharedLibDepends(ctx, newShlibResolver(sb), objs, local)
		res.Warnings = append(res.Warnings, warns...)
		if deps, ok, warn := versionedShlibDepends(ctx, sb, stage, objs); ok {
			res.SharedLibDepends = deps
		} else if warn != "" {
			res.Warnings = append(res.Warnings, warn)
		}
	}
	if res.ConsoleScripts, err = consoleScripts(stage, sitePackages); err != nil {
		return err
	}
	if o.SourceDateEpoch > 0 {
		if err := clampTimes(stage, o.SourceDateEpoch); err != nil {
			return err
		}
	}
	return nil
}

// removeVenvGitignore drops the "*" .gitignore that Python 3.13's venv
// writes so that a venv inside a work tree is not committed: a package
// has no work tree, and lintian flags it (package-contains-vcs-control-file).
func removeVenvGitignore(stage string) error {
	p := filepath.Join(stage, ".gitignore")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), "Created by venv") {
		return nil
	}
	return os.Remove(p)
}
