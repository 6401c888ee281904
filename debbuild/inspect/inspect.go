// Package inspect reads a .deb back in full, any .deb and not only
// debship's (its control fields, scripts, files and the mode it was built
// in), for `debship inspect`, deploy and cluster apply, and checks it:
// md5sums, venv shebangs, leaked build paths, and the lintian of the
// release it was built for.
package inspect

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
)

// Package is a .deb read back: any .deb, not only ours.
type Package struct {
	File    string   `json:"file"`
	Format  string   `json:"format"`
	Members []string `json:"members"`
	// Target is the Debian release the package was built for, from its
	// version (VersionTarget); "" when it names none.
	Target string `json:"target,omitempty"`
	// Mode is the mode the package was built in, debfile.ModeCluster or
	// ModeSystemd (its ModeField, else what its postinst does); "" when
	// neither says (the postinst starts no unit).
	Mode      string            `json:"mode,omitempty"`
	Control   []debfile.Field   `json:"control"`
	Scripts   map[string]string `json:"scripts,omitempty"`
	Conffiles []string          `json:"conffiles,omitempty"`
	Units     map[string]string `json:"units,omitempty"`
	Files     []Entry           `json:"files"`

	md5sums map[string]string
	content map[string][]byte // regular files of data.tar
	extra   map[string][]byte // other control members
}

// Entry is one member of data.tar.
type Entry struct {
	Path     string `json:"path"`
	Type     string `json:"type"` // file, dir, symlink, hardlink, other
	Mode     string `json:"mode"`
	Owner    string `json:"owner"`
	Size     int64  `json:"size"`
	Target   string `json:"target,omitempty"`
	Conffile bool   `json:"conffile,omitempty"`
}

// CheckResult is the outcome of one check of `inspect --check`.
type CheckResult struct {
	Name     string   `json:"name"`
	OK       bool     `json:"ok"`
	Skipped  bool     `json:"skipped,omitempty"` // not run; Problems says why
	Problems []string `json:"problems,omitempty"`
}

// Field returns the value of a control field, or "".
func (p *Package) Field(name string) string {
	for _, f := range p.Control {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// File returns the content of a regular file in the package ("/etc/x").
func (p *Package) FileContent(name string) ([]byte, bool) {
	b, ok := p.content[strings.TrimPrefix(name, "/")]
	return b, ok
}

// ReadPackage reads a .deb file.
func ReadPackage(file string) (*Package, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	members, err := debfile.ReadMembers(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	p := &Package{File: file, Scripts: map[string]string{}, Units: map[string]string{},
		md5sums: map[string]string{}, content: map[string][]byte{}, extra: map[string][]byte{}}
	var haveControl, haveData bool
	for _, m := range members {
		p.Members = append(p.Members, m.Name)
		switch {
		case m.Name == "debian-binary":
			p.Format = strings.TrimSpace(string(m.Data))
		case strings.HasPrefix(m.Name, "control.tar"):
			if err := p.readControl(m); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, m.Name, err)
			}
			haveControl = true
		case strings.HasPrefix(m.Name, "data.tar"):
			if err := p.readData(m); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", file, m.Name, err)
			}
			haveData = true
		}
	}
	if p.Format != "2.0" || !haveControl || !haveData {
		return nil, fmt.Errorf("%s: not a Debian binary package (format %q, members %s)", file, p.Format, strings.Join(p.Members, ", "))
	}
	if r, ok := debversion.VersionTarget(p.Field("Version")); ok {
		p.Target = r.Target
	}
	p.Mode = p.readMode()
	conf := map[string]bool{}
	for _, c := range p.Conffiles {
		conf[strings.TrimPrefix(c, "/")] = true
	}
	for i := range p.Files {
		p.Files[i].Conffile = conf[strings.TrimPrefix(p.Files[i].Path, "/")]
	}
	return p, nil
}

func (p *Package) readControl(m debfile.Member) error {
	return debfile.EachTarEntry(m, func(h *tar.Header, tr *tar.Reader) error {
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		switch name := path.Clean(strings.TrimPrefix(h.Name, "./")); name {
		case "control":
			p.Control = debfile.ParseControl(string(b))
		case "md5sums":
			for _, line := range strings.Split(string(b), "\n") {
				sum, file, ok := strings.Cut(line, "  ")
				if ok {
					p.md5sums[strings.TrimPrefix(path.Clean(strings.TrimPrefix(file, "./")), "/")] = sum
				}
			}
		case "conffiles":
			for _, line := range strings.Split(string(b), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					p.Conffiles = append(p.Conffiles, line)
				}
			}
		case "preinst", "postinst", "prerm", "postrm", "config":
			p.Scripts[name] = string(b)
		default:
			p.extra[name] = b
		}
		return nil
	})
}

func (p *Package) readData(m debfile.Member) error {
	return debfile.EachTarEntry(m, func(h *tar.Header, tr *tar.Reader) error {
		name := path.Clean("/" + strings.TrimPrefix(h.Name, "./"))
		if name == "/" {
			return nil
		}
		e := Entry{Path: name, Mode: fmt.Sprintf("%04o", h.Mode&0o7777), Owner: h.Uname + "/" + h.Gname, Size: h.Size}
		if e.Owner == "/" {
			e.Owner = fmt.Sprintf("%d/%d", h.Uid, h.Gid)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			e.Type = "file"
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			p.content[strings.TrimPrefix(name, "/")] = b
			if strings.HasSuffix(name, ".service") && strings.Contains(name, "/systemd/system/") {
				p.Units[path.Base(name)] = string(b)
			}
		case tar.TypeDir:
			e.Type = "dir"
		case tar.TypeSymlink:
			e.Type, e.Target = "symlink", h.Linkname
		case tar.TypeLink:
			e.Type, e.Target = "hardlink", h.Linkname
		default:
			e.Type = "other"
		}
		p.Files = append(p.Files, e)
		return nil
	})
}

// Check verifies the package: md5sums, venv shebangs, leaked build paths.
func (p *Package) Check() []CheckResult {
	return []CheckResult{p.checkMD5(), p.checkShebangs(), p.checkBuildPaths()}
}

func (p *Package) checkMD5() CheckResult {
	r := CheckResult{Name: "md5sums match the files"}
	if len(p.md5sums) == 0 {
		r.Problems = append(r.Problems, "the package has no md5sums")
	}
	for file, want := range p.md5sums {
		b, ok := p.content[file]
		if !ok {
			r.Problems = append(r.Problems, fmt.Sprintf("md5sums lists /%s, which is not a file in the package", file))
			continue
		}
		sum := md5.Sum(b)
		if hex.EncodeToString(sum[:]) != want {
			r.Problems = append(r.Problems, fmt.Sprintf("/%s: md5sum differs from the md5sums file", file))
		}
	}
	for file := range p.content {
		if _, ok := p.md5sums[file]; !ok && len(p.md5sums) > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("/%s is missing from md5sums", file))
		}
	}
	sort.Strings(r.Problems)
	r.OK = len(r.Problems) == 0
	return r
}

// venvDirs are the directories holding a pyvenv.cfg.
func (p *Package) venvDirs() []string {
	var out []string
	for file := range p.content {
		if path.Base(file) == "pyvenv.cfg" {
			out = append(out, "/"+path.Dir(file))
		}
	}
	sort.Strings(out)
	return out
}

var pythonInterp = regexp.MustCompile(`(^|/)python[0-9.]*$`)

func (p *Package) checkShebangs() CheckResult {
	r := CheckResult{Name: "venv shebangs point into the venv"}
	for _, v := range p.venvDirs() {
		for file, b := range p.content {
			if !strings.HasPrefix("/"+file, v+"/") || !bytes.HasPrefix(b, []byte("#!")) {
				continue
			}
			line, _, _ := bytes.Cut(b[2:], []byte("\n"))
			fields := strings.Fields(string(line))
			if len(fields) == 0 {
				r.Problems = append(r.Problems, fmt.Sprintf("/%s: empty shebang", file))
				continue
			}
			interp := fields[0]
			if interp == "/bin/sh" && len(b) > 2 && bytes.Contains(b, []byte("'''exec' ")) {
				// pip's trampoline for long paths: the real interpreter is on the exec line.
				if i := bytes.Index(b, []byte("'''exec' ")); i >= 0 {
					rest := strings.Fields(string(b[i+9:]))
					if len(rest) > 0 {
						interp = strings.Trim(rest[0], `"'`)
					}
				}
			}
			if interp == "/usr/bin/env" && len(fields) > 1 {
				interp = fields[1]
			}
			if pythonInterp.MatchString(interp) && !strings.HasPrefix(interp, v+"/") {
				r.Problems = append(r.Problems, fmt.Sprintf("/%s: shebang runs %s, not the venv's interpreter in %s/bin", file, interp, v))
			}
		}
	}
	sort.Strings(r.Problems)
	r.OK = len(r.Problems) == 0
	return r
}

func (p *Package) checkBuildPaths() CheckResult {
	r := CheckResult{Name: "no build path leaked"}
	var pats []*regexp.Regexp
	for _, v := range p.venvDirs() {
		// The venv path with something in front of it is a staging or
		// build directory (e.g. /tmp/x/root/opt/venvs/app or debian/app/opt/venvs/app).
		pats = append(pats, regexp.MustCompile(`[A-Za-z0-9_.+~-]/+`+regexp.QuoteMeta(strings.TrimPrefix(v, "/"))+`\b`))
		if cfg, ok := p.content[strings.TrimPrefix(v, "/")+"/pyvenv.cfg"]; ok {
			for _, line := range strings.Split(string(cfg), "\n") {
				if k, val, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "command" && !strings.Contains(val, " "+v) {
					r.Problems = append(r.Problems, fmt.Sprintf("%s/pyvenv.cfg: command = %s names a build path", v, strings.TrimSpace(val)))
				}
			}
		}
	}
	pats = append(pats, regexp.MustCompile(`file:///(tmp|build|home|root|builds)/`))
	check := func(name string, b []byte) {
		for _, re := range pats {
			if loc := re.FindIndex(b); loc != nil {
				start := max(0, loc[0]-40)
				frag := strings.Map(func(r rune) rune {
					if r < 32 || r > 126 {
						return '.'
					}
					return r
				}, string(b[start:min(len(b), loc[1]+10)]))
				r.Problems = append(r.Problems, fmt.Sprintf("%s: contains a build path: %q", name, frag))
				return
			}
		}
	}
	for file, b := range p.content {
		check("/"+file, b)
	}
	for name, s := range p.Scripts {
		check("control/"+name, []byte(s))
	}
	sort.Strings(r.Problems)
	r.OK = len(r.Problems) == 0
	return r
}
