package cluster

import (
	"gitlab.com/debship/debship/cluster/inventory"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/templates"
)

var q = transport.Quote

// render renders templates/files/cluster/<name>.
func render(name string, data any) ([]byte, error) {
	return templates.Render("cluster/"+name, data)
}

// fileState compares a file on the node with the wanted content and mode.
func fileState(ctx context.Context, t *Target, path string, want []byte, mode os.FileMode) (State, error) {
	out, err := t.Sh(ctx, fmt.Sprintf("if [ -f %[1]s ]; then sha256sum < %[1]s | cut -d' ' -f1; stat -c %%a %[1]s; else echo missing; fi", q(path)))
	if err != nil {
		return State{}, err
	}
	if out == "missing" {
		return Todo("%s missing", path), nil
	}
	sum := sha256.Sum256(want)
	lines := strings.Fields(out)
	if len(lines) != 2 {
		return State{}, fmt.Errorf("unexpected output of a file check: %q", out)
	}
	if lines[0] != hex.EncodeToString(sum[:]) {
		return Todo("%s differs", path), nil
	}
	if lines[1] != fmt.Sprintf("%o", mode.Perm()) {
		return Todo("%s has mode %s, want %o", path, lines[1], mode.Perm()), nil
	}
	return Done(), nil
}

// fileStep keeps a file's content; after (a shell command, may be empty)
// runs when it changed, e.g. a reload.
func fileStep(name, path string, mode os.FileMode, content func(t *Target) ([]byte, error), after string) Step {
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
			if after != "" {
				_, err = t.Sh(ctx, after)
			}
			return err
		},
	}
}

// templateFile renders a template with per-node data.
func templateFile(tmpl string, data func(t *Target) any) func(t *Target) ([]byte, error) {
	return func(t *Target) ([]byte, error) { return render(tmpl, data(t)) }
}

// missingPackages lists the packages that are not installed.
func missingPackages(ctx context.Context, t *Target, pkgs []string) ([]string, error) {
	out, err := t.Sh(ctx, "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' "+strings.Join(pkgs, " ")+" 2>/dev/null || true")
	if err != nil {
		return nil, err
	}
	installed := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "ii" {
			installed[strings.SplitN(f[1], ":", 2)[0]] = true
		}
	}
	var missing []string
	for _, p := range pkgs {
		if !installed[p] {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

const aptEnv = "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a "
const aptInstall = aptEnv + "apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --no-install-recommends "

// packagesStep installs Debian packages that are missing. apt's lists are
// refreshed only when the install does not find a package.
func packagesStep(name string, pkgs func(t *Target) []string) Step {
	return Step{
		Name: name,
		Hint: "apt-get could not install the packages: is the node's apt mirror reachable (apt-get update on the node)?",
		Check: func(ctx context.Context, t *Target) (State, error) {
			m, err := missingPackages(ctx, t, pkgs(t))
			if err != nil {
				return State{}, err
			}
			return doneIf(len(m) == 0, "install %s", strings.Join(m, " ")), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			m, err := missingPackages(ctx, t, pkgs(t))
			if err != nil {
				return err
			}
			cmd := aptInstall + strings.Join(m, " ")
			if _, err := t.Sh(ctx, cmd); err != nil {
				if _, err2 := t.Sh(ctx, aptEnv+"apt-get -q update && "+cmd); err2 != nil {
					return err2
				}
			}
			return nil
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
			_, err := t.Sh(ctx, fmt.Sprintf("systemctl enable %[1]s >/dev/null 2>&1 && systemctl start %[1]s", q(unit)))
			return err
		},
	}
}

func unitState(ctx context.Context, t *Target, unit string) (State, error) {
	out, err := t.Sh(ctx, fmt.Sprintf("echo $(systemctl is-enabled %[1]s 2>/dev/null) $(systemctl is-active %[1]s 2>/dev/null)", q(unit)))
	if err != nil {
		return State{}, err
	}
	f := strings.Fields(out)
	enabled, active := len(f) > 0 && f[0] == "enabled", len(f) > 1 && f[1] == "active"
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
