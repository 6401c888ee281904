package venv

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// metadata is the part of a core-metadata file (METADATA) we use.
type metadata struct {
	Name         string
	Version      string
	RequiresDist []string
	Extras       []string // Provides-Extra
}

// parseMetadata reads the RFC 822 style header of a METADATA file; the body
// (the long description) is ignored.
func parseMetadata(r io.Reader) (metadata, error) {
	var m metadata
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a folded header we do not read
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "name":
			m.Name = v
		case "version":
			m.Version = v
		case "requires-dist":
			m.RequiresDist = append(m.RequiresDist, v)
		case "provides-extra":
			m.Extras = append(m.Extras, v)
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if m.Name == "" || m.Version == "" {
		return m, errors.New("METADATA has no Name or Version")
	}
	return m, nil
}

// wheelMetadata reads METADATA from a built wheel: the backend's view of the
// name and version, which resolves dynamic versions (setuptools attr/file,
// setuptools-scm, hatch-vcs …) without our having to know the backend.
func wheelMetadata(whl string) (metadata, error) {
	zr, err := zip.OpenReader(whl)
	if err != nil {
		return metadata{}, fmt.Errorf("open wheel: %w", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		dir, name, ok := strings.Cut(f.Name, "/")
		if !ok || name != "METADATA" || !strings.HasSuffix(dir, ".dist-info") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return metadata{}, err
		}
		defer rc.Close()
		m, err := parseMetadata(rc)
		if err != nil {
			return m, fmt.Errorf("%s in %s: %w", f.Name, filepath.Base(whl), err)
		}
		return m, nil
	}
	return metadata{}, fmt.Errorf("%s has no .dist-info/METADATA", filepath.Base(whl))
}

var normRe = regexp.MustCompile(`[-_.]+`)

// normName is the PEP 503 normalised project name.
func normName(s string) string { return strings.ToLower(normRe.ReplaceAllString(s, "-")) }

var (
	reqNameRe   = regexp.MustCompile(`^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)`)
	extraMarkRe = regexp.MustCompile(`\bextra\s*==\s*["']([^"']+)["']`)
)

// requirement is a Requires-Dist value split into the name and the marker.
type requirement struct {
	Name   string // normalised
	Marker string
}

func parseRequirement(s string) (requirement, bool) {
	spec, marker, _ := strings.Cut(s, ";")
	m := reqNameRe.FindStringSubmatch(spec)
	if m == nil {
		return requirement{}, false
	}
	return requirement{Name: normName(m[1]), Marker: strings.TrimSpace(marker)}, true
}

// installedDist is one .dist-info directory in site-packages.
type installedDist struct {
	Dir  string // absolute path of the .dist-info dir
	Meta metadata
}

func (d installedDist) norm() string { return normName(d.Meta.Name) }

func listDists(sitePackages string) ([]installedDist, error) {
	dirs, err := filepath.Glob(filepath.Join(sitePackages, "*.dist-info"))
	if err != nil {
		return nil, err
	}
	sort.Strings(dirs)
	var out []installedDist
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, "METADATA"))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Base(dir), err)
		}
		m, err := parseMetadata(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(dir), err)
		}
		out = append(out, installedDist{Dir: dir, Meta: m})
	}
	return out, nil
}

// installTools are what a venv needs to install things but an application
// does not need to run.
var installTools = []string{"pip", "setuptools", "wheel"}

// dependents names the installed distributions that need tool. Markers are
// not evaluated (that needs a PEP 508 evaluator): a requirement counts unless
// it is conditional on an extra of the project that was not requested. Being
// wrong this way ships a tool we could have dropped (with a warning); the
// other way would break the application at run time.
func dependents(dists []installedDist, tool, project string, extras []string, dropped map[string]bool) []string {
	var out []string
	for _, d := range dists {
		if d.norm() == tool || dropped[d.norm()] {
			continue
		}
		for _, rs := range d.Meta.RequiresDist {
			r, ok := parseRequirement(rs)
			if !ok || r.Name != tool {
				continue
			}
			if d.norm() == project {
				if m := extraMarkRe.FindAllStringSubmatch(r.Marker, -1); m != nil {
					wanted := false
					for _, e := range m {
						wanted = wanted || slices.Contains(extras, normName(e[1]))
					}
					if !wanted {
						continue
					}
				}
			}
			out = append(out, d.Meta.Name)
			break
		}
	}
	return out
}

// pruneInstallTools removes pip, setuptools and wheel (files, dist-info,
// bin entries) unless an installed distribution needs them.
func pruneInstallTools(root, sitePackages, project string, extras []string) (warnings []string, err error) {
	dists, err := listDists(sitePackages)
	if err != nil {
		return nil, err
	}
	var normExtras []string
	for _, e := range extras {
		normExtras = append(normExtras, normName(e))
	}
	project = normName(project)
	dropped := map[string]bool{}
	for _, tool := range installTools {
		for _, d := range dists {
			if d.norm() == tool {
				dropped[tool] = true
			}
		}
	}
	// A kept tool may need another (setuptools needing wheel, say), so
	// settle until nothing changes.
	for changed := true; changed; {
		changed = false
		for _, tool := range installTools {
			if dropped[tool] && len(dependents(dists, tool, project, normExtras, dropped)) > 0 {
				dropped[tool] = false
				changed = true
			}
		}
	}
	for _, tool := range installTools {
		for _, d := range dists {
			if d.norm() != tool {
				continue
			}
			if !dropped[tool] {
				warnings = append(warnings, fmt.Sprintf("kept %s in the venv because %s requires it", d.Meta.Name,
					strings.Join(dependents(dists, tool, project, normExtras, dropped), ", ")))
				continue
			}
			if err := removeDist(root, sitePackages, d); err != nil {
				return warnings, fmt.Errorf("remove %s: %w", d.Meta.Name, err)
			}
		}
	}
	return warnings, nil
}

// removeDist uninstalls a distribution by its RECORD, the way pip would,
// then drops directories left empty.
func removeDist(root, sitePackages string, d installedDist) error {
	rec, err := os.ReadFile(filepath.Join(d.Dir, "RECORD"))
	if err != nil {
		return err
	}
	r := csv.NewReader(bytes.NewReader(rec))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return fmt.Errorf("parse RECORD: %w", err)
	}
	parents := map[string]bool{}
	for _, row := range rows {
		if len(row) == 0 || row[0] == "" {
			continue
		}
		p := row[0]
		if !filepath.IsAbs(p) {
			p = filepath.Join(sitePackages, filepath.FromSlash(p))
		}
		p = filepath.Clean(p)
		if !strings.HasPrefix(p, root+"/") {
			return fmt.Errorf("RECORD names %s outside the venv", row[0])
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for dir := filepath.Dir(p); strings.HasPrefix(dir, sitePackages+"/"); dir = filepath.Dir(dir) {
			parents[dir] = true
		}
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		return err
	}
	// Deepest first, so a package dir goes after its emptied subdirs.
	dirs := make([]string, 0, len(parents))
	for dir := range parents {
		dirs = append(dirs, dir)
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, dir := range dirs {
		if entries, err := os.ReadDir(dir); err == nil && len(entries) == 0 {
			if err := os.Remove(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeBytecode deletes every __pycache__ dir and .pyc/.pyo file.
//
// Why ship no bytecode: lintian rejects packages that ship __pycache__
// (package-installs-python-pycache-dir is an error), and pycs compiled here
// would go stale on an interpreter patch update anyway. The package's
// postinst byte-compiles the venv at install time (dh-python's approach) and
// prerm removes the pycs again, so dpkg never owns a .pyc.
func removeBytecode(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			dirs = append(dirs, p)
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(d.Name(), ".pyc") || strings.HasSuffix(d.Name(), ".pyo")) {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return nil
}

// removeDirectURLs drops PEP 610 direct_url.json files: they record where
// pip found each wheel on the build host (a temp path) and nothing at run
// time reads them. Their RECORD lines go when RECORDs are rewritten.
func removeDirectURLs(sitePackages string) error {
	files, err := filepath.Glob(filepath.Join(sitePackages, "*.dist-info", "direct_url.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return nil
}

// consoleScripts lists [console_scripts] names of installed distributions
// that exist in bin.
func consoleScripts(root, sitePackages string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(sitePackages, "*.dist-info", "entry_points.txt"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, n := range entryPointNames(data, "console_scripts") {
			if st, err := os.Lstat(filepath.Join(root, "bin", n)); err == nil && !st.IsDir() {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// entryPointNames reads the names in one section of an entry_points.txt.
func entryPointNames(data []byte, section string) []string {
	var names []string
	in := false
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			in = strings.TrimSpace(strings.Trim(line, "[]")) == section
		case in:
			if k, _, ok := strings.Cut(line, "="); ok {
				names = append(names, strings.TrimSpace(k))
			}
		}
	}
	return names
}
