package debbuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gitlab.com/debship/debship/debbuild/buildroot"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/venv"
)

// BuildOptions are the knobs of one build that are not part of the Spec.
type BuildOptions struct {
	Output           string // output directory; default <project>/dist
	KeepStaging      bool   // leave the staging directory for debugging
	IndexURL         string
	ExtraIndexURLs   []string
	FindLinks        []string
	NoIndex          bool
	NoBuildIsolation bool
	BuildIsolation   bool  // force pip's isolated build env for the project's wheel
	SourceDateEpoch  int64 // 0: $SOURCE_DATE_EPOCH, else the last commit's time, else now
	// Target is the Debian release to build for ("debian-13"); "" is the
	// host's. A build for another release runs in a cached root of it.
	Target string
	// Refresh rebuilds that cached root even when it is less than a day old.
	Refresh bool
	Log     io.Writer
	Verbose bool
}

// BuildResult describes the written package.
type BuildResult struct {
	Path    string
	Arch    string
	Version string // full Debian version
	Target  string // the release it is for ("debian-13"); "" when untargeted
	// ProjectVersion is the project's PEP 440 version, a dynamic one
	// resolved by the build backend.
	ProjectVersion string
	Depends        []string
	Warnings       []string
	Staging        string // set when KeepStaging
}

// Build turns the project described by spec into a .deb in o.Output.
// Nothing half-written is left behind: the .deb appears by rename, and the
// staging directory is removed on success and failure alike.
func Build(ctx context.Context, spec *Spec, o BuildOptions) (res *BuildResult, err error) {
	b := &builder{spec: spec, o: o, log: o.Log}
	if b.log == nil {
		b.log = io.Discard
	}
	if b.sde, err = SourceDateEpoch(spec.Dir, o.SourceDateEpoch); err != nil {
		return nil, err
	}
	if b.rel, b.targeted, err = debversion.ResolveTarget(o.Target); err != nil {
		return nil, err
	}
	vo := venv.Options{
		ProjectDir:   spec.Dir,
		Requirements: spec.Requirements,
		FindLinks:    o.FindLinks,
	}
	// A short staging path keeps pip's shebangs under the kernel's 127-byte
	// limit, so pip writes plain shebangs instead of its exec trampolines.
	tmp := ""
	if b.targeted && buildroot.Needed(b.rel) {
		br, err := buildroot.Open(ctx, b.rel, o.Refresh, b.log)
		if err != nil {
			return nil, err
		}
		defer func() {
			kept, cerr := br.Close(o.KeepStaging)
			if res != nil && kept != "" {
				res.Staging = filepath.Join(kept, strings.TrimPrefix(res.Staging, br.Dir()))
				b.logf("staging kept in %s", res.Staging)
			}
			if err == nil && cerr != nil {
				res, err = nil, cerr
			}
		}()
		if vo, err = exposeToRoot(br, vo); err != nil {
			return nil, err
		}
		tmp = br.Dir()
	}
	stage, err := os.MkdirTemp(tmp, "dsb")
	if err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	defer func() {
		if o.KeepStaging {
			if res != nil {
				res.Staging = stage
			}
			if tmp == "" {
				b.logf("staging kept in %s", stage)
			}
			return
		}
		os.RemoveAll(stage)
	}()
	return b.inStage(ctx, vo, filepath.Join(stage, "root"))
}

// builder is one run of Build.
type builder struct {
	spec     *Spec
	o        BuildOptions
	log      io.Writer
	sde      int64
	rel      debian.Release // the target release; the host's when untargeted
	targeted bool
}

func (b *builder) logf(format string, a ...any) { fmt.Fprintf(b.log, format+"\n", a...) }

// inStage builds the venv into the staging root, adds debship's own
// files next to it and writes the .deb.
func (b *builder) inStage(ctx context.Context, vo venv.Options, root string) (*BuildResult, error) {
	spec, o := b.spec, b.o
	vr, err := b.buildVenv(ctx, vo, root)
	if err != nil {
		return nil, err
	}
	debVersion, target, err := b.debianVersion(vr)
	if err != nil {
		return nil, err
	}
	if err := checkScripts(spec, vr.ConsoleScripts); err != nil {
		return nil, err
	}

	arch := "all"
	if vr.ArchDependent {
		arch = debfile.HostArch()
	}
	g := &generator{spec: spec, root: root, sde: b.sde, debVersion: debVersion}
	if b.targeted {
		g.suite, g.unitDir = b.rel.Suite, b.rel.UnitDir
	}
	if err := g.generate(); err != nil {
		return nil, err
	}

	depends := append([]string{}, vr.PythonDepends...)
	depends = append(depends, vr.SharedLibDepends...)
	if spec.User != "" {
		depends = append(depends, "adduser")
	}
	depends = append(depends, spec.Depends...)
	depends = uniq(depends)

	out := o.Output
	if out == "" {
		out = filepath.Join(spec.Dir, "dist")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	final := filepath.Join(out, debfile.FileName(spec.Package, debVersion, arch))
	b.logf("writing %s", final)
	if err := writeDeb(root, final, debInfo{
		spec:      spec,
		version:   debVersion,
		arch:      arch,
		depends:   depends,
		conffiles: g.conffiles,
		scripts:   g.scripts,
		mtime:     time.Unix(b.sde, 0).UTC(),
	}); err != nil {
		return nil, err
	}
	for _, w := range vr.Warnings {
		b.logf("warning: %s", w)
	}
	return &BuildResult{Path: final, Arch: arch, Version: debVersion, Target: target, ProjectVersion: spec.Version, Depends: depends, Warnings: vr.Warnings}, nil
}

// buildVenv builds the project's virtualenv into the staging root, in the
// build root when vo has one.
func (b *builder) buildVenv(ctx context.Context, vo venv.Options, root string) (*venv.Result, error) {
	spec, o := b.spec, b.o
	where := ""
	if vo.Root != "" {
		where = " in the " + b.rel.Suite + " build root"
	}
	b.logf("building virtualenv %s with %s%s", spec.VenvDir, spec.Python, where)
	return venv.Build(ctx, venv.Options{
		Root:             vo.Root,
		ProjectDir:       vo.ProjectDir,
		Python:           spec.Python,
		VenvDir:          spec.VenvDir,
		StageRoot:        root,
		Requirements:     vo.Requirements,
		Extras:           spec.Extras,
		KeepPip:          spec.KeepPip,
		IndexURL:         o.IndexURL,
		ExtraIndexURLs:   o.ExtraIndexURLs,
		FindLinks:        vo.FindLinks,
		NoIndex:          o.NoIndex,
		NoBuildIsolation: o.NoBuildIsolation,
		BuildIsolation:   o.BuildIsolation,
		SourceDateEpoch:  b.sde,
		Log:              b.log,
		Verbose:          o.Verbose,
	})
}

// debianVersion is the full Debian version of the package and the release
// it is for ("" when untargeted), once the build backend has resolved a
// dynamic version.
func (b *builder) debianVersion(vr *venv.Result) (version, target string, err error) {
	spec, rel := b.spec, b.rel
	if spec.DynamicVersion {
		spec.Version = vr.ProjectVersion
		spec.DynamicVersion = false
	}
	debVersion, err := spec.DebianVersion()
	if err != nil {
		return "", "", fmt.Errorf("version %q of the built project: %w", spec.Version, err)
	}
	if !b.targeted {
		return debVersion, "", nil
	}
	// The venv is tied to its interpreter's minor version: a package
	// labelled for a release whose python3 is another one could not
	// be installed there.
	if vr.PythonVersion != rel.Python {
		return "", "", fmt.Errorf("%s is Python %s, but %s's python3 is %s: the package would not install there; build with %s's /usr/bin/python3 (drop --python or [tool.debship] python)", spec.Python, vr.PythonVersion, rel.Target, rel.Python, rel.Target)
	}
	return debversion.TargetVersion(debVersion, rel), rel.Target, nil
}

// checkScripts makes sure every name we link into /usr/bin or start from a
// unit really is a console script of the built venv.
func checkScripts(spec *Spec, have []string) error {
	for _, sc := range spec.Scripts {
		if !contains(have, sc) {
			return fmt.Errorf("%s: script %q is not a console script of the built virtualenv (it has: %s); fix [tool.debship] scripts or [project.scripts]", spec.PyProject, sc, orNone(have))
		}
	}
	prefix := spec.VenvDir + "/bin/"
	for _, svc := range spec.Services {
		first, _, _ := strings.Cut(svc.Exec, " ")
		if name, ok := strings.CutPrefix(first, prefix); ok && !contains(have, name) {
			return fmt.Errorf("%s: service %s: exec %q is not a console script of the built virtualenv (it has: %s)", spec.PyProject, svc.Name, name, orNone(have))
		}
	}
	return nil
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// SourceDateEpoch picks the one timestamp of a build: explicit, then
// $SOURCE_DATE_EPOCH, then the last commit in dir (so two builds of one
// commit are identical), then now.
func SourceDateEpoch(dir string, explicit int64) (int64, error) {
	if explicit > 0 {
		return explicit, nil
	}
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970; unset it or fix it", v)
		}
		return n, nil
	}
	out, err := exec.Command("git", "-C", dir, "log", "-1", "--format=%ct").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n, nil
		}
	}
	return time.Now().Unix(), nil
}

func uniq(l []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range l {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// exposeToRoot makes the project, a requirements file outside it and the
// local find-links directories visible in the build root, and returns the
// options with their paths there.
func exposeToRoot(br *buildroot.Root, vo venv.Options) (venv.Options, error) {
	vo.Root = br.Dir()
	project, err := br.Expose(vo.ProjectDir)
	if err != nil {
		return vo, err
	}
	if vo.Requirements != "" {
		if rel, err := filepath.Rel(vo.ProjectDir, vo.Requirements); err == nil && !strings.HasPrefix(rel, "..") {
			vo.Requirements = filepath.Join(project, rel)
		} else if vo.Requirements, err = br.ExposeFile(vo.Requirements); err != nil {
			return vo, err
		}
	}
	vo.ProjectDir = project
	var links []string
	for _, fl := range vo.FindLinks {
		if !strings.Contains(fl, "://") {
			abs, err := filepath.Abs(fl)
			if err != nil {
				return vo, err
			}
			if fl, err = br.Expose(abs); err != nil {
				return vo, err
			}
		}
		links = append(links, fl)
	}
	vo.FindLinks = links
	return vo, nil
}
