package debbuild

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gitlab.com/debship/debship/debbuild/buildroot"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/templates"
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
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	logf := func(format string, a ...any) { fmt.Fprintf(logw, format+"\n", a...) }

	sde, err := SourceDateEpoch(spec.Dir, o.SourceDateEpoch)
	if err != nil {
		return nil, err
	}
	rel, targeted, err := debversion.ResolveTarget(o.Target)
	if err != nil {
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
	if targeted && buildroot.Needed(rel) {
		br, err := buildroot.Open(ctx, rel, o.Refresh, logw)
		if err != nil {
			return nil, err
		}
		defer func() {
			kept, cerr := br.Close(o.KeepStaging)
			if res != nil && kept != "" {
				res.Staging = filepath.Join(kept, strings.TrimPrefix(res.Staging, br.Dir()))
				logf("staging kept in %s", res.Staging)
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
				logf("staging kept in %s", stage)
			}
			return
		}
		os.RemoveAll(stage)
	}()
	root := filepath.Join(stage, "root")

	where := ""
	if vo.Root != "" {
		where = " in the " + rel.Suite + " build root"
	}
	logf("building virtualenv %s with %s%s", spec.VenvDir, spec.Python, where)
	vr, err := venv.Build(ctx, venv.Options{
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
		SourceDateEpoch:  sde,
		Log:              logw,
		Verbose:          o.Verbose,
	})
	if err != nil {
		return nil, err
	}
	if spec.DynamicVersion {
		spec.Version = vr.ProjectVersion
		spec.DynamicVersion = false
	}
	debVersion, err := spec.DebianVersion()
	if err != nil {
		return nil, fmt.Errorf("version %q of the built project: %w", spec.Version, err)
	}
	target := ""
	if targeted {
		// The venv is tied to its interpreter's minor version: a package
		// labelled for a release whose python3 is another one could not
		// be installed there.
		if vr.PythonVersion != rel.Python {
			return nil, fmt.Errorf("%s is Python %s, but %s's python3 is %s: the package would not install there; build with %s's /usr/bin/python3 (drop --python or [tool.debship] python)", spec.Python, vr.PythonVersion, rel.Target, rel.Python, rel.Target)
		}
		debVersion, target = debversion.TargetVersion(debVersion, rel), rel.Target
	}
	if err := checkScripts(spec, vr.ConsoleScripts); err != nil {
		return nil, err
	}

	arch := "all"
	if vr.ArchDependent {
		arch = debfile.HostArch()
	}
	g := &generator{spec: spec, root: root, sde: sde, debVersion: debVersion}
	if targeted {
		g.suite, g.unitDir = rel.Suite, rel.UnitDir
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
	logf("writing %s", final)
	if err := writeDeb(root, final, debInfo{
		spec:      spec,
		version:   debVersion,
		arch:      arch,
		depends:   depends,
		conffiles: g.conffiles,
		scripts:   g.scripts,
		mtime:     time.Unix(sde, 0).UTC(),
	}); err != nil {
		return nil, err
	}
	for _, w := range vr.Warnings {
		logf("warning: %s", w)
	}
	return &BuildResult{Path: final, Arch: arch, Version: debVersion, Target: target, ProjectVersion: spec.Version, Depends: depends, Warnings: vr.Warnings}, nil
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

// generator writes debship's own files (units, docs, man pages, links,
// conffiles) into the staging root next to the venv.
type generator struct {
	spec       *Spec
	root       string
	sde        int64
	debVersion string
	suite      string // the changelog's distribution
	unitDir    string // the target release's systemd unit directory
	conffiles  []string
	scripts    map[string][]byte
}

func (g *generator) generate() error {
	s := g.spec
	// An untargeted build: Debian's default distribution and the unit
	// directory every release reads.
	if g.suite == "" {
		g.suite = "unstable"
	}
	if g.unitDir == "" {
		g.unitDir = "/lib/systemd/system"
	}
	var units []string
	for _, svc := range s.Services {
		var unit []byte
		var err error
		if svc.Unit != "" {
			unit, err = os.ReadFile(svc.Unit)
		} else {
			unit, err = templates.Render("deb/service.service", map[string]any{"Spec": s, "Service": svc, "Migrate": ""})
		}
		if err != nil {
			return fmt.Errorf("unit %s: %w", svc.Name, err)
		}
		if err := g.write(strings.TrimPrefix(g.unitDir, "/")+"/"+svc.Name+".service", unit, 0o644); err != nil {
			return err
		}
		units = append(units, svc.Name+".service")
	}
	var migrate []string
	if s.Migrate != nil {
		base, _ := s.migrateBase()
		base.Extra = migrateExtra(base.Extra)
		base.Description += " (migration)"
		unit, err := templates.Render("deb/service.service", map[string]any{"Spec": s, "Service": base, "Migrate": strings.Join(s.Migrate, " ")})
		if err != nil {
			return fmt.Errorf("unit %s: %w", MigrateUnit(s.Package), err)
		}
		if err := g.write(strings.TrimPrefix(g.unitDir, "/")+"/"+MigrateUnit(s.Package), unit, 0o644); err != nil {
			return err
		}
		migrate = append(migrate, MigrateUnit(s.Package))
	}

	date := time.Unix(g.sde, 0).UTC()
	for _, sc := range s.Scripts {
		if err := g.symlink("usr/bin/"+sc, path.Join(s.VenvDir, "bin", sc)); err != nil {
			return err
		}
		page, err := g.manPage(sc, date)
		if err != nil {
			return err
		}
		if err := g.write("usr/share/man/man1/"+sc+".1.gz", page, 0o644); err != nil {
			return err
		}
	}

	doc := "usr/share/doc/" + s.Package + "/"
	entries := changelogEntries(s, g.debVersion, g.sde)
	data := map[string]any{"Spec": s, "Year": date.Year(), "Entries": entries, "Suite": g.suite}
	for _, f := range []struct {
		tmpl, dest string
		gz         bool
	}{
		{"deb/copyright", doc + "copyright", false},
		{"deb/changelog.Debian", doc + "changelog.Debian.gz", true},
	} {
		b, err := templates.Render(f.tmpl, data)
		if err != nil {
			return err
		}
		if f.gz {
			if b, err = debfile.GzipN(b); err != nil {
				return err
			}
		}
		if err := g.write(f.dest, b, 0o644); err != nil {
			return err
		}
	}
	ov, err := templates.Render("deb/lintian-overrides", map[string]any{
		"Spec": s, "InOpt": strings.HasPrefix(s.VenvDir, "/opt/"),
		"InitialUpload": initialUpload(entries),
	})
	if err != nil {
		return err
	}
	if err := g.write("usr/share/lintian/overrides/"+s.Package, ov, 0o644); err != nil {
		return err
	}

	for _, c := range s.Conffiles {
		b, err := os.ReadFile(c.Source)
		if err != nil {
			return fmt.Errorf("conffile %s: %w", c.Source, err)
		}
		if err := g.write(strings.TrimPrefix(c.Dest, "/"), b, 0o644); err != nil {
			return err
		}
		g.conffiles = append(g.conffiles, c.Dest)
	}

	scripts, err := maintainerScripts(s, units, migrate)
	g.scripts = scripts
	return err
}

// maintainerScripts renders postinst, prerm and postrm for the package's
// units; the migration's unit (oneshot) is only recorded, never enabled.
func maintainerScripts(s *Spec, units, oneshots []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	sdata := map[string]any{"Spec": s, "Units": units, "Oneshots": oneshots}
	for _, name := range []string{"postinst", "prerm", "postrm"} {
		b, err := templates.Render("deb/"+name, sdata)
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	return out, nil
}

// manPage is the project's own man/<name>.1 when it ships one, else a short
// page generated from the metadata (lintian wants one per command in /usr/bin).
func (g *generator) manPage(name string, date time.Time) ([]byte, error) {
	own := filepath.Join(g.spec.Dir, "man", name+".1")
	b, err := os.ReadFile(own)
	if err != nil {
		b, err = templates.Render("deb/manpage.1", map[string]any{
			"Spec": g.spec, "Name": name, "Synopsis": g.spec.Description, "Date": date.Format("2006-01-02"),
		})
		if err != nil {
			return nil, err
		}
	}
	return debfile.GzipN(b)
}

func (g *generator) write(rel string, data []byte, mode fs.FileMode) error {
	p := filepath.Join(g.root, rel)
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("%s is both in the virtualenv and generated by debship; remove one", "/"+rel)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, mode)
}

func (g *generator) symlink(rel, target string) error {
	p := filepath.Join(g.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.Symlink(target, p)
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

// initialUpload reports whether lintian takes the changelog for a new
// package's first upload to Debian (one entry, revision 1), which it wants
// to close an ITP bug. debship's packages are never uploaded to Debian, so
// there is no such bug; the override says so.
func initialUpload(entries []changelogEntry) bool {
	return len(entries) == 1 && strings.HasSuffix(entries[0].Version, "-1")
}
