package debbuild

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/templates"
)

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
	// An untargeted build: Debian's default distribution and the unit
	// directory every release reads.
	if g.suite == "" {
		g.suite = "unstable"
	}
	if g.unitDir == "" {
		g.unitDir = "/lib/systemd/system"
	}
	units, err := g.serviceUnits()
	if err != nil {
		return err
	}
	migrate, err := g.migrateUnit()
	if err != nil {
		return err
	}
	date := time.Unix(g.sde, 0).UTC()
	if err := g.commands(date); err != nil {
		return err
	}
	if err := g.docs(date); err != nil {
		return err
	}
	if err := g.conffileCopies(); err != nil {
		return err
	}
	scripts, err := maintainerScripts(g.spec, units, migrate)
	g.scripts = scripts
	return err
}

// serviceUnits writes a unit per service, the project's own or generated,
// and returns their names.
func (g *generator) serviceUnits() ([]string, error) {
	s := g.spec
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
			return nil, fmt.Errorf("unit %s: %w", svc.Name, err)
		}
		if err := g.write(strings.TrimPrefix(g.unitDir, "/")+"/"+svc.Name+".service", unit, 0o644); err != nil {
			return nil, err
		}
		units = append(units, svc.Name+".service")
	}
	return units, nil
}

// migrateUnit writes the migration's oneshot unit, when the project has a
// migration, and returns its name.
func (g *generator) migrateUnit() ([]string, error) {
	s := g.spec
	if s.Migrate == nil {
		return nil, nil
	}
	base, _ := s.migrateBase()
	base.Extra = migrateExtra(base.Extra)
	base.Description += " (migration)"
	unit, err := templates.Render("deb/service.service", map[string]any{"Spec": s, "Service": base, "Migrate": strings.Join(s.Migrate, " ")})
	if err != nil {
		return nil, fmt.Errorf("unit %s: %w", MigrateUnit(s.Package), err)
	}
	if err := g.write(strings.TrimPrefix(g.unitDir, "/")+"/"+MigrateUnit(s.Package), unit, 0o644); err != nil {
		return nil, err
	}
	return []string{MigrateUnit(s.Package)}, nil
}

// commands links every script into /usr/bin, each with its man page.
func (g *generator) commands(date time.Time) error {
	s := g.spec
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
	return nil
}

// docs writes the copyright, the changelog and the lintian overrides.
func (g *generator) docs(date time.Time) error {
	s := g.spec
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
	return g.write("usr/share/lintian/overrides/"+s.Package, ov, 0o644)
}

// conffileCopies copies the project's conffiles to their place under /etc.
func (g *generator) conffileCopies() error {
	for _, c := range g.spec.Conffiles {
		b, err := os.ReadFile(c.Source)
		if err != nil {
			return fmt.Errorf("conffile %s: %w", c.Source, err)
		}
		if err := g.write(strings.TrimPrefix(c.Dest, "/"), b, 0o644); err != nil {
			return err
		}
		g.conffiles = append(g.conffiles, c.Dest)
	}
	return nil
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

// initialUpload reports whether lintian takes the changelog for a new
// package's first upload to Debian (one entry, revision 1), which it wants
// to close an ITP bug. debship's packages are never uploaded to Debian, so
// there is no such bug; the override says so.
func initialUpload(entries []changelogEntry) bool {
	return len(entries) == 1 && strings.HasSuffix(entries[0].Version, "-1")
}
