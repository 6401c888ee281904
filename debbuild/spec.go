package debbuild

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/grammar"
	"gitlab.com/debship/debship/internal/tomlfile"
)

// Spec is what the package is: read once from pyproject.toml and used by
// build, CI generation, the Dockerfile and deploy, so that a name or a version
// is never worked out twice.
type Spec struct {
	Dir       string // project directory (absolute)
	PyProject string // path of pyproject.toml

	ProjectName    string // [project].name as written
	Version        string // upstream PEP 440 version; empty while DynamicVersion is unresolved
	DynamicVersion bool   // [project].dynamic names "version": the build backend resolves it
	Revision       string // Debian revision, default "1"

	Package         string   // Debian package name
	Maintainer      string   // "Name <email>"
	Description     string   // synopsis (one line)
	LongDescription string   // extended description (may be empty)
	Section         string   // default "web"
	Priority        string   // default "optional"
	Homepage        string   // from [tool.debship] or [project.urls]
	License         string   // [project].license text or SPDX id, for copyright
	Depends         []string // extra Debian dependencies
	Python          string   // interpreter, absolute path
	VenvDir         string   // /opt/venvs/<package>
	Requirements    string   // absolute path of a requirements/constraints file, or ""
	Extras          []string
	Scripts         []string // console scripts linked into /usr/bin
	ProjectScripts  []string // [project.scripts] names, sorted
	User            string   // system user; "" when none
	Mode            string   // "systemd" or "cluster"
	KeepPip         bool
	Compression     string // xz, zstd, gzip, none
	// Targets are the Debian releases one build run makes packages for
	// ("debian-13", "debian-12"); empty: the build host's release.
	Targets   []string
	Conffiles []Conffile
	Services  []Service
	// Migrate is the migration command as argv (the console script by its
	// absolute path, then the arguments); nil: the project has none. It
	// runs as the oneshot unit MigrateUnit(), once per deploy.
	Migrate []string
	CI      CIConfig
}

// MigrateUnit is the oneshot unit that runs the migration: the name
// deploy starts, derived from the package alone so that deploy needs
// nothing but the inventory's package name.
func MigrateUnit(pkg string) string { return pkg + "-migrate.service" }

// Conffile maps a file of the project to its place under /etc.
type Conffile struct {
	Source string // absolute path in the project
	Dest   string // absolute path under /etc
}

// Service is one systemd unit of the package.
type Service struct {
	Name             string   // unit name without ".service"
	Description      string   // unit Description=
	Exec             string   // ExecStart= with the first word resolved to an absolute path
	EnvironmentFile  string   // optional
	WorkingDirectory string   // default the state dir
	After            []string // extra After=/Wants= units
	Restart          string   // default "on-failure"
	Extra            []string // raw [Service] lines, they come last and so override the defaults
	Unit             string   // absolute path of a unit file shipped in the project (replaces everything above)
	Port             int      // the port it listens on (for docs, Docker EXPOSE, health checks)
	HealthPath       string   // HTTP path answering 200 when healthy, e.g. "/healthz"
}

// StateDir is where the service user may write.
func (s *Spec) StateDir() string { return "/var/lib/" + s.Package }

// UpstreamDebianVersion is the upstream part of the Debian version.
func (s *Spec) UpstreamDebianVersion() (string, error) { return debversion.DebianVersion(s.Version) }

// DebianVersion is the full Debian version, "<upstream>-<revision>".
func (s *Spec) DebianVersion() (string, error) {
	return debversion.FullDebianVersion(s.Version, s.Revision)
}

// TargetDebianVersion is the full Debian version a build of the spec for
// target ("" the host's release) writes, as its file name carries it.
func (s *Spec) TargetDebianVersion(target string) (string, error) {
	v, err := s.DebianVersion()
	if err != nil {
		return "", err
	}
	return debversion.VersionFor(v, target)
}

// pyproject is the part of pyproject.toml we read outside our own table.
// Keys we do not know here are somebody else's business and are ignored.
type pyproject struct {
	Project projectTable `toml:"project"`
}

// projectTable is [project].
type projectTable struct {
	Name        string            `toml:"name"`
	Version     string            `toml:"version"`
	Description string            `toml:"description"`
	Dynamic     []string          `toml:"dynamic"`
	Scripts     map[string]string `toml:"scripts"`
	Authors     []person          `toml:"authors"`
	Maintainers []person          `toml:"maintainers"`
	URLs        map[string]string `toml:"urls"`
	License     any               `toml:"license"`
}

type person struct {
	Name  string `toml:"name"`
	Email string `toml:"email"`
}

// table is [tool.debship]. Every key is optional. Unknown keys are errors.
type table struct {
	Package      *string           `toml:"package"`
	Version      *string           `toml:"version"`
	Revision     *string           `toml:"revision"`
	Maintainer   *string           `toml:"maintainer"`
	Description  *string           `toml:"description"`
	Section      *string           `toml:"section"`
	Priority     *string           `toml:"priority"`
	Homepage     *string           `toml:"homepage"`
	Depends      []string          `toml:"depends"`
	Python       *string           `toml:"python"`
	VenvDir      *string           `toml:"venv-dir"`
	Requirements *string           `toml:"requirements"`
	Extras       []string          `toml:"extras"`
	Scripts      []string          `toml:"scripts"`
	User         *string           `toml:"user"`
	Mode         *string           `toml:"mode"`
	KeepPip      *bool             `toml:"keep-pip"`
	Compression  *string           `toml:"compression"`
	Targets      []string          `toml:"targets"`
	Conffiles    map[string]string `toml:"conffiles"`
	Service      []serviceTable    `toml:"service"`
	Migrate      *string           `toml:"migrate"`
	CI           CIConfig          `toml:"ci"`
}

type serviceTable struct {
	Name             string   `toml:"name"`
	Description      string   `toml:"description"`
	Exec             string   `toml:"exec"`
	EnvironmentFile  string   `toml:"environment-file"`
	WorkingDirectory string   `toml:"working-directory"`
	After            []string `toml:"after"`
	Restart          string   `toml:"restart"`
	Extra            []string `toml:"extra"`
	Unit             string   `toml:"unit"`
	Port             int      `toml:"port"`
	HealthPath       string   `toml:"health-path"`
}

type strictDoc struct {
	Tool struct {
		Debship table `toml:"debship"`
	} `toml:"tool"`
}

// Overrides are command-line values that win over the file.
type Overrides struct {
	Package     string
	Version     string
	Revision    string
	Python      string
	Compression string
	Mode        string
	KeepPip     bool
}

var (
	pep503RE    = regexp.MustCompile(`[-_.]+`)
	maintRE     = regexp.MustCompile(`^[^<>]+ <[^<>@\s]+@[^<>\s]+>$`)
	restartVals = []string{"no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always"}
)

// LoadSpec reads dir/pyproject.toml and returns the package Spec.
func LoadSpec(dir string, ov Overrides) (*Spec, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("project directory %s: %w", dir, err)
	}
	file := filepath.Join(abs, "pyproject.toml")
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s not found: run debship in a Python project directory or pass the directory as an argument", file)
		}
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	var py pyproject
	if err := toml.Unmarshal(data, &py); err != nil {
		return nil, tomlfile.Error(file, err, tomlfile.Options{SeeAlso: "README: Configuration"})
	}
	var doc strictDoc
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		// Only our own table is strict: [build-system], [project] and
		// other tools' tables are not ours to judge.
		ours := func(k []string) bool { return len(k) >= 2 && k[0] == "tool" && k[1] == "debship" }
		if err := tomlfile.Error(file, err, tomlfile.Options{SeeAlso: "README: Configuration", Keep: ours}); err != nil {
			return nil, err
		}
	}
	s, err := newSpec(abs, file, data, &py, &doc.Tool.Debship, ov)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newSpec is the Spec of the pyproject.toml read from file, with the
// command line's overrides applied.
func newSpec(dir, file string, data []byte, py *pyproject, t *table, ov Overrides) (*Spec, error) {
	p := &py.Project
	s := &Spec{
		Dir:         dir,
		PyProject:   file,
		ProjectName: p.Name,
		Version:     p.Version,
		Revision:    "1",
		Description: strings.TrimSpace(p.Description),
		Section:     "web",
		Priority:    "optional",
		Python:      "/usr/bin/python3",
		Mode:        "systemd",
		Compression: "xz",
		CI:          t.CI,
	}
	if p.Name == "" {
		return nil, fmt.Errorf("%s: [project] has no name; add name = \"my-app\" under [project]", file)
	}
	for _, d := range p.Dynamic {
		if d == "version" {
			s.DynamicVersion = true
		}
	}
	r := &specReader{s: s, dir: dir, file: file, lines: tomlfile.Lines(data), p: p, t: t, ov: ov}
	// In this order: a part uses what the ones before it read (the venv is
	// named after the package, a service's exec after the scripts), and the
	// first bad value is the one reported.
	for _, read := range []func() error{
		r.packageName, r.version, r.controlFields, r.python, r.targets,
		r.scripts, r.mode, r.conffiles, r.services, r.user, r.migrate, r.ci,
	} {
		if err := read(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// specReader fills a Spec from pyproject.toml one part at a time, and
// names the file and line of a bad value.
type specReader struct {
	s     *Spec
	dir   string // the project directory
	file  string // its pyproject.toml
	lines map[string]int
	p     *projectTable
	t     *table
	ov    Overrides
}

// at is file:line of the first of keys the file has, else the file.
func (r *specReader) at(keys ...string) string {
	for _, k := range keys {
		if l, ok := r.lines[k]; ok {
			return fmt.Sprintf("%s:%d", r.file, l)
		}
	}
	return r.file
}

// line is where a key of [tool.debship] (or of [project]) is set.
func (r *specReader) line(key string) string {
	return r.at("tool.debship."+key, "project."+key, "tool.debship")
}

// packageName reads the Debian package name: [tool.debship] package,
// else the project's name made legal; --package wins over both.
func (r *specReader) packageName() error {
	s, p, t, ov := r.s, r.p, r.t, r.ov
	if t.Package != nil {
		s.Package = *t.Package
		if grammar.DebianPackage(s.Package) != nil {
			return fmt.Errorf("%s: package %q is not a legal Debian package name; use lower-case letters, digits, '+', '-' and '.', at least two characters, starting with a letter or digit", r.line("package"), s.Package)
		}
	} else {
		s.Package = strings.ToLower(pep503RE.ReplaceAllString(p.Name, "-"))
		if grammar.DebianPackage(s.Package) != nil {
			return fmt.Errorf("%s: project name %q gives the Debian package name %q, which is not legal; set [tool.debship] package = \"a-legal-name\"", r.line("name"), p.Name, s.Package)
		}
	}
	if ov.Package != "" {
		if grammar.DebianPackage(ov.Package) != nil {
			return fmt.Errorf("--package %q is not a legal Debian package name; use lower-case letters, digits, '+', '-' and '.'", ov.Package)
		}
		s.Package = ov.Package
	}
	return nil
}

// version reads the upstream version and the Debian revision.
func (r *specReader) version() error {
	s, t, ov := r.s, r.t, r.ov
	if t.Version != nil {
		s.Version, s.DynamicVersion = *t.Version, false
	}
	if ov.Version != "" {
		s.Version, s.DynamicVersion = ov.Version, false
	}
	if s.Version == "" && !s.DynamicVersion {
		return fmt.Errorf("%s: [project] has no version; add version = \"1.0.0\" under [project] (or list \"version\" in dynamic)", r.file)
	}
	if s.Version != "" {
		if _, err := debversion.DebianVersion(s.Version); err != nil {
			where := r.line("version")
			if ov.Version != "" {
				where = "--version"
			}
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if t.Revision != nil {
		s.Revision = *t.Revision
	}
	if ov.Revision != "" {
		s.Revision = ov.Revision
	}
	if !revisionRE.MatchString(s.Revision) {
		return fmt.Errorf("%s: revision %q is not a legal Debian revision; use digits and letters, e.g. \"1\" or \"2ubuntu1\"", r.line("revision"), s.Revision)
	}
	return nil
}

// controlFields reads the maintainer, the descriptions and the other
// control fields (and the licence, for the copyright file).
func (r *specReader) controlFields() error {
	s, p, t := r.s, r.p, r.t
	if t.Maintainer != nil {
		s.Maintainer = *t.Maintainer
	} else {
		s.Maintainer = firstPerson(p.Maintainers, p.Authors)
		if s.Maintainer == "" {
			s.Maintainer = gitMaintainer(r.dir)
		}
	}
	if s.Maintainer == "" {
		return fmt.Errorf("%s: no maintainer: add [project] authors = [{name = \"Your Name\", email = \"you@example.org\"}] or [tool.debship] maintainer = \"Your Name <you@example.org>\"", r.file)
	}
	if !maintRE.MatchString(s.Maintainer) {
		return fmt.Errorf("%s: maintainer %q must look like \"Your Name <you@example.org>\"", r.line("maintainer"), s.Maintainer)
	}
	if t.Description != nil {
		s.Description = strings.TrimSpace(*t.Description)
	}
	if i := strings.IndexByte(s.Description, '\n'); i >= 0 {
		s.LongDescription = strings.TrimSpace(s.Description[i+1:])
		s.Description = strings.TrimSpace(s.Description[:i])
	}
	if s.Description == "" {
		s.Description = p.Name + " Python application"
	}
	s.Description = strings.TrimSuffix(s.Description, ".")
	setStr(&s.Section, t.Section)
	setStr(&s.Priority, t.Priority)
	s.Homepage = homepage(p.URLs)
	setStr(&s.Homepage, t.Homepage)
	s.License = licenseText(p.License)
	s.Depends = t.Depends
	for _, d := range s.Depends {
		if strings.TrimSpace(d) == "" || strings.ContainsAny(d, ",\n") {
			return fmt.Errorf("%s: depends entry %q must be one Debian relation per string, e.g. depends = [\"libpq5\", \"nginx | apache2\"]", r.line("depends"), d)
		}
	}
	return nil
}

// python reads the interpreter, the venv and how the package is compressed.
func (r *specReader) python() error {
	s, t, ov := r.s, r.t, r.ov
	setStr(&s.Python, t.Python)
	if ov.Python != "" {
		s.Python = ov.Python
	}
	if !filepath.IsAbs(s.Python) {
		return fmt.Errorf("%s: python %q must be an absolute path such as /usr/bin/python3: the package runs on hosts where only Debian's interpreter exists", r.line("python"), s.Python)
	}
	s.VenvDir = "/opt/venvs/" + s.Package
	setStr(&s.VenvDir, t.VenvDir)
	if err := grammar.Path(s.VenvDir); err != nil {
		return fmt.Errorf("%s: venv-dir %q %v; write e.g. venv-dir = \"/opt/venvs/%s\"", r.line("venv-dir"), s.VenvDir, err, s.Package)
	}
	if t.Requirements != nil {
		s.Requirements = filepath.Join(r.dir, *t.Requirements)
		if _, err := os.Stat(s.Requirements); err != nil {
			return fmt.Errorf("%s: requirements file %s not found; fix the path (it is relative to the project directory)", r.line("requirements"), *t.Requirements)
		}
	}
	s.Extras = t.Extras
	if t.KeepPip != nil {
		s.KeepPip = *t.KeepPip
	}
	s.KeepPip = s.KeepPip || ov.KeepPip
	setStr(&s.Compression, t.Compression)
	if ov.Compression != "" {
		s.Compression = ov.Compression
	}
	switch s.Compression {
	case "xz", "zstd", "gzip", "none":
	default:
		return fmt.Errorf("%s: compression %q is not one of xz, zstd, gzip, none", r.line("compression"), s.Compression)
	}
	return nil
}

// targets reads the Debian releases one build run makes packages for.
func (r *specReader) targets() error {
	s, t := r.s, r.t
	for i, tg := range t.Targets {
		if _, ok := debian.ByTarget(tg); !ok {
			return fmt.Errorf("%s: targets: %v", r.line("targets"), debian.UnknownTargetError(tg))
		}
		if contains(t.Targets[:i], tg) {
			return fmt.Errorf("%s: targets names %s twice; list each release once", r.line("targets"), tg)
		}
	}
	s.Targets = t.Targets
	return nil
}

// scripts reads the console scripts linked into /usr/bin.
func (r *specReader) scripts() error {
	s, p, t := r.s, r.p, r.t
	for name := range p.Scripts {
		s.ProjectScripts = append(s.ProjectScripts, name)
	}
	sort.Strings(s.ProjectScripts)
	s.Scripts = s.ProjectScripts
	if t.Scripts != nil {
		s.Scripts = t.Scripts
	}
	for _, sc := range s.Scripts {
		if sc == "" || strings.ContainsAny(sc, "/ \t") {
			return fmt.Errorf("%s: script %q must be a plain command name", r.line("scripts"), sc)
		}
	}
	return nil
}

// mode reads whether the package starts its units or pacemaker does.
func (r *specReader) mode() error {
	s, t, ov := r.s, r.t, r.ov
	setStr(&s.Mode, t.Mode)
	if ov.Mode != "" {
		if ov.Mode != "systemd" && ov.Mode != "cluster" {
			return fmt.Errorf("--mode %q must be \"systemd\" or \"cluster\"", ov.Mode)
		}
		s.Mode = ov.Mode
	}
	if s.Mode != "systemd" && s.Mode != "cluster" {
		return fmt.Errorf("%s: mode %q must be \"systemd\" (the package enables and starts its units) or \"cluster\" (pacemaker runs them)", r.line("mode"), s.Mode)
	}
	return nil
}

// conffiles reads the project's files that go under /etc.
func (r *specReader) conffiles() error {
	s, t := r.s, r.t
	var srcs []string
	for src := range t.Conffiles {
		srcs = append(srcs, src)
	}
	sort.Strings(srcs)
	seen := map[string]bool{}
	for _, src := range srcs {
		dst := t.Conffiles[src]
		if !path.IsAbs(dst) || !strings.HasPrefix(path.Clean(dst), "/etc/") {
			return fmt.Errorf("%s: conffile destination %q must be an absolute path under /etc/", r.line("conffiles."+src), dst)
		}
		abs := filepath.Join(r.dir, src)
		if st, err := os.Stat(abs); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("%s: conffile source %q is not a file in the project; fix the path (relative to %s)", r.line("conffiles."+src), src, r.dir)
		}
		if seen[dst] {
			return fmt.Errorf("%s: two conffiles go to %s", r.line("conffiles."+src), dst)
		}
		seen[dst] = true
		s.Conffiles = append(s.Conffiles, Conffile{Source: abs, Dest: path.Clean(dst)})
	}
	return nil
}

// services reads the systemd units.
func (r *specReader) services() error {
	s, t := r.s, r.t
	names := map[string]bool{}
	for i, st := range t.Service {
		table := fmt.Sprintf("tool.debship.service.%d", i)
		sline := func(key string) string { return r.at(table+"."+key, table) }
		svc, err := s.newService(i, st, len(t.Service), sline)
		if err != nil {
			return err
		}
		if names[svc.Name] {
			return fmt.Errorf("%s: two services are named %q", sline("service"), svc.Name)
		}
		names[svc.Name] = true
		s.Services = append(s.Services, svc)
	}
	return nil
}

// user reads the system user the services run as.
func (r *specReader) user() error {
	s := r.s
	if len(s.Services) > 0 {
		s.User = s.Package
	}
	setStr(&s.User, r.t.User)
	if s.User != "" {
		if err := grammar.User(s.User); err != nil {
			return fmt.Errorf("%s: user %q %v; write e.g. user = \"%s\"", r.line("user"), s.User, err, s.Package)
		}
	}
	if s.User == "root" {
		return fmt.Errorf("%s: user must not be root: the service runs as its own system user", r.line("user"))
	}
	return nil
}

// migrate reads the migration command (setMigrate).
func (r *specReader) migrate() error {
	if r.t.Migrate == nil {
		return nil
	}
	return r.s.setMigrate(*r.t.Migrate, r.line("migrate"))
}

// ci checks [tool.debship.ci].
func (r *specReader) ci() error {
	return r.s.CI.validate(func(k string) string { return r.at("tool.debship.ci."+k, "tool.debship.ci") })
}

func (s *Spec) newService(i int, st serviceTable, n int, line func(string) string) (Service, error) {
	svc := Service{
		Name:             st.Name,
		Description:      st.Description,
		EnvironmentFile:  st.EnvironmentFile,
		WorkingDirectory: st.WorkingDirectory,
		After:            st.After,
		Restart:          st.Restart,
		Extra:            st.Extra,
		Port:             st.Port,
		HealthPath:       st.HealthPath,
	}
	where := line("service")
	if svc.Name == "" {
		if n > 1 {
			return svc, fmt.Errorf("%s: service #%d has no name; with several services each needs name = \"...\"", where, i+1)
		}
		svc.Name = s.Package
	}
	svc.Name = strings.TrimSuffix(svc.Name, ".service")
	if err := grammar.SystemdUnit(svc.Name); err != nil {
		return svc, fmt.Errorf("%s: service name %q %v; write e.g. name = \"%s\"", line("name"), svc.Name, err, s.Package)
	}
	if svc.Port < 0 || svc.Port > 65535 {
		return svc, fmt.Errorf("%s: service %s: port %d is not between 1 and 65535", line("port"), svc.Name, svc.Port)
	}
	if svc.HealthPath != "" && !strings.HasPrefix(svc.HealthPath, "/") {
		return svc, fmt.Errorf("%s: service %s: health-path %q must start with /", line("health-path"), svc.Name, svc.HealthPath)
	}
	if st.Unit != "" {
		if st.Exec != "" {
			return svc, fmt.Errorf("%s: service %s has both unit and exec; use one: a unit file, or exec and the other keys", line("unit"), svc.Name)
		}
		svc.Unit = filepath.Join(s.Dir, st.Unit)
		if fi, err := os.Stat(svc.Unit); err != nil || !fi.Mode().IsRegular() {
			return svc, fmt.Errorf("%s: unit file %q not found in the project; fix the path (relative to %s)", line("unit"), st.Unit, s.Dir)
		}
		return svc, nil
	}
	if st.Exec == "" {
		return svc, fmt.Errorf("%s: service %s has no exec; add exec = \"<console script> [args]\" or unit = \"path/to/%s.service\"", where, svc.Name, svc.Name)
	}
	first, rest, _ := strings.Cut(strings.TrimSpace(st.Exec), " ")
	if !path.IsAbs(first) {
		if !contains(s.ProjectScripts, first) {
			hint := "none are declared: add them under [project.scripts]"
			if len(s.ProjectScripts) > 0 {
				hint = "the project's console scripts are: " + strings.Join(s.ProjectScripts, ", ")
			}
			return svc, fmt.Errorf("%s: service %s: exec %q names no console script of the project and is not an absolute path; %s", line("exec"), svc.Name, first, hint)
		}
		first = path.Join(s.VenvDir, "bin", first)
	}
	svc.Exec = strings.TrimSpace(first + " " + rest)
	if svc.Restart == "" {
		svc.Restart = "on-failure"
	}
	if !contains(restartVals, svc.Restart) {
		return svc, fmt.Errorf("%s: service %s: restart %q is not one of %s", line("restart"), svc.Name, svc.Restart, strings.Join(restartVals, ", "))
	}
	if svc.WorkingDirectory == "" {
		svc.WorkingDirectory = s.StateDir()
	}
	if svc.Description == "" {
		svc.Description = s.Description
	}
	return svc, nil
}

var revisionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+~]*$`)

func setStr(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func firstPerson(lists ...[]person) string {
	for _, l := range lists {
		for _, p := range l {
			if p.Name != "" && p.Email != "" {
				return p.Name + " <" + p.Email + ">"
			}
		}
	}
	return ""
}

func gitMaintainer(dir string) string {
	get := func(key string) string {
		out, err := exec.Command("git", "-C", dir, "config", key).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	name, email := get("user.name"), get("user.email")
	if name == "" || email == "" {
		return ""
	}
	return name + " <" + email + ">"
}

func homepage(urls map[string]string) string {
	for _, k := range []string{"Homepage", "homepage", "Home", "Source", "source", "Repository", "repository"} {
		if u := urls[k]; u != "" {
			return u
		}
	}
	return ""
}

func licenseText(v any) string {
	switch l := v.(type) {
	case string:
		return l
	case map[string]any:
		if t, ok := l["text"].(string); ok {
			return t
		}
		if f, ok := l["file"].(string); ok {
			return "see " + f
		}
	}
	return ""
}
