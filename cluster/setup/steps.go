package setup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/templates"
)

var q = transport.Quote

// render renders templates/files/cluster/<name>.
func render(name string, data any) ([]byte, error) {
	return templates.Render("cluster/"+name, data)
}

// fileState compares a file on the node with the wanted content, mode and
// owner: root's, as Upload leaves it. A file another user owns is a change
// to make even with the right content, since that user could rewrite it.
// stat does not follow a link, so a link in the file's place (mode 777)
// is one too.
func fileState(ctx context.Context, t *Target, path string, want []byte, mode os.FileMode) (State, error) {
	out, err := t.Sh(ctx, fmt.Sprintf("if [ -f %[1]s ]; then sha256sum < %[1]s | cut -d' ' -f1; stat -c '%%a %%u:%%g' %[1]s; else echo missing; fi", q(path)))
	if err != nil {
		return State{}, err
	}
	if out == "missing" {
		return Todo("%s missing", path), nil
	}
	sum := sha256.Sum256(want)
	lines := strings.Fields(out)
	if len(lines) != 3 {
		return State{}, fmt.Errorf("unexpected output of a file check: %q", out)
	}
	if lines[0] != hex.EncodeToString(sum[:]) {
		return Todo("%s differs", path), nil
	}
	if lines[1] != fmt.Sprintf("%o", mode.Perm()) {
		return Todo("%s has mode %s, want %o", path, lines[1], mode.Perm()), nil
	}
	if lines[2] != "0:0" {
		return Todo("%s belongs to %s, want root (0:0)", path, lines[2]), nil
	}
	return Done(), nil
}

// fileStep keeps a file's content; after (may be nil) runs when it
// changed, e.g. a reload.
func fileStep(name, path string, mode os.FileMode, content func(t *Target) ([]byte, error), after func(ctx context.Context, t *Target) error) Step {
	return Step{
		Name: name,
		File: &FileSpec{Path: path, Content: func(_ context.Context, t *Target) ([]byte, error) { return content(t) }},
		Check: func(ctx context.Context, t *Target) (State, error) {
			b, err := content(t)
			if err != nil {
				return State{}, err
			}
			return fileState(ctx, t, path, b, mode)
		},
		Apply: func(ctx context.Context, t *Target) error {
			b, err := content(t)
			if err != nil {
				return err
			}
			if err := t.T.Upload(ctx, path, b, mode); err != nil {
				return err
			}
			if after != nil {
				err = after(ctx, t)
			}
			return err
		},
	}
}

// templateFile renders a template with per-node data.
func templateFile(tmpl string, data func(t *Target) any) func(t *Target) ([]byte, error) {
	return func(t *Target) ([]byte, error) { return render(tmpl, data(t)) }
}

// packagesStep installs Debian packages that are missing. apt's lists are
// refreshed only when the install does not find a package.
func packagesStep(name string, pkgs func(t *Target) []string) Step {
	return packagesStepCtx(name, func(_ context.Context, t *Target) ([]string, error) { return pkgs(t), nil })
}

// releasePackagesStep is packagesStep for packages whose names depend on
// the node's Debian release (fence-agents was split in Debian 13).
func releasePackagesStep(name string, pkgs func(r debian.Release, t *Target) []string) Step {
	return packagesStepCtx(name, func(ctx context.Context, t *Target) ([]string, error) {
		r, err := t.Release(ctx)
		if err != nil {
			return nil, err
		}
		return pkgs(r, t), nil
	})
}

func packagesStepCtx(name string, pkgs func(ctx context.Context, t *Target) ([]string, error)) Step {
	missing := func(ctx context.Context, t *Target) ([]string, error) {
		p, err := pkgs(ctx, t)
		if err != nil {
			return nil, err
		}
		return host.MissingPackages(ctx, t.T, p)
	}
	return Step{
		Name: name,
		Hint: "apt-get could not install the packages: is the node's apt mirror reachable (apt-get update on the node)?",
		Check: func(ctx context.Context, t *Target) (State, error) {
			m, err := missing(ctx, t)
			if err != nil {
				return State{}, err
			}
			return doneIf(len(m) == 0, "install %s", strings.Join(m, " ")), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			m, err := missing(ctx, t)
			if err != nil {
				return err
			}
			return host.InstallPackages(ctx, t.T, m)
		},
	}
}

// serviceStep keeps a unit enabled and running.
func serviceStep(unit string) Step {
	return Step{
		Name: "service " + strings.TrimSuffix(unit, ".service"),
		Hint: "see the unit's log on the node: journalctl -u " + unit,
		Check: func(ctx context.Context, t *Target) (State, error) {
			return unitState(ctx, t, unit)
		},
		Apply: func(ctx context.Context, t *Target) error {
			return host.EnableStart(ctx, t.T, unit)
		},
	}
}

func unitState(ctx context.Context, t *Target, unit string) (State, error) {
	enabled, active, err := host.UnitState(ctx, t.T, unit)
	if err != nil {
		return State{}, err
	}
	switch {
	case !enabled && !active:
		return Todo("enable and start %s", unit), nil
	case !enabled:
		return Todo("enable %s", unit), nil
	case !active:
		return Todo("start %s", unit), nil
	}
	return Done(), nil
}

// A setting is a named value on a node (in a section, for pacemaker's
// properties), as settingsStep keeps it.
type setting struct{ section, name, value string }

// settingsStep keeps settings at their wanted values: the check names those
// that differ (name=value), the apply sets only those.
func settingsStep(name string, want func(t *Target) []setting,
	get func(ctx context.Context, t *Target, s setting) (string, error),
	set func(ctx context.Context, t *Target, s setting) error) Step {
	differ := func(ctx context.Context, t *Target) ([]setting, error) {
		var d []setting
		for _, s := range want(t) {
			v, err := get(ctx, t, s)
			if err != nil {
				return nil, err
			}
			if v != s.value {
				d = append(d, s)
			}
		}
		return d, nil
	}
	return Step{
		Name: name,
		Check: func(ctx context.Context, t *Target) (State, error) {
			d, err := differ(ctx, t)
			if err != nil {
				return State{}, err
			}
			var s []string
			for _, o := range d {
				s = append(s, o.name+"="+o.value)
			}
			return doneIf(len(d) == 0, "set %s", strings.Join(s, " ")), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			d, err := differ(ctx, t)
			if err != nil {
				return err
			}
			for _, s := range d {
				if err := set(ctx, t, s); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// shStep is a step whose check is a shState script and whose apply is one
// more script.
func shStep(name, hint, check, apply string) Step {
	return Step{
		Name:  name,
		Hint:  hint,
		Check: func(ctx context.Context, t *Target) (State, error) { return shState(ctx, t, check) },
		Apply: func(ctx context.Context, t *Target) error {
			_, err := t.Sh(ctx, apply)
			return err
		},
	}
}

// shState runs a read-only check script that prints "ok" when done, or the
// reason it is not.
func shState(ctx context.Context, t *Target, script string) (State, error) {
	out, err := t.Sh(ctx, script)
	if err != nil {
		return State{}, err
	}
	if out == "ok" {
		return Done(), nil
	}
	return Todo("%s", out), nil
}

func nodeNames(ns []inventory.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func others(all []inventory.Node, n inventory.Node) []inventory.Node {
	var out []inventory.Node
	for _, m := range all {
		if m.Name != n.Name {
			out = append(out, m)
		}
	}
	return out
}
