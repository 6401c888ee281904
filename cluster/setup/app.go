package setup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/inspect"
)

func appPhase(inv *inventory.Inventory, o Options) Phase {
	primary := []inventory.Node{inv.Primary()}
	return Phase{Name: PhaseApp, Stages: append(sharedStages(inv),
		Stage{Nodes: inv.Members(), Steps: append(dropInSteps(inv), installStep())},
		// One node migrates, before the resource that starts the app
		// exists: a failed migration leaves the app stopped everywhere.
		Stage{Nodes: primary, Steps: []Step{migrateStep(), appResourceStep(), constraintsStep()}},
	)}
}

// packageProblem refuses, before any node is contacted, a --package built
// in mode "systemd": its postinst would enable and start the app on every
// node, outside pacemaker and before the app resource exists. A file that
// is not a readable .deb is left to the install step, which reports it.
func packageProblem(inv *inventory.Inventory, path string) error {
	if path == "" {
		return nil
	}
	p, err := inspect.ReadPackage(path)
	if err != nil || p.Mode != debfile.ModeSystemd {
		return nil
	}
	return fmt.Errorf("%s was built in mode \"systemd\": its postinst would enable and start %s on every node, outside pacemaker; set mode = \"cluster\" under [tool.debship] in pyproject.toml, build it again and apply that",
		filepath.Base(path), inv.AppUnit())
}

// installStep installs the first version of the app from --package. Later
// versions come with deploy, so any installed version counts as done.
func installStep() Step {
	return Step{
		Name: "app package",
		Hint: "apt-get could not install the package: are its dependencies installable on the node?",
		Check: func(ctx context.Context, t *Target) (State, error) {
			pkg := t.Inv().App.Package
			v, err := host.InstalledVersion(ctx, t.T, pkg)
			if err != nil || v != "" {
				return Done(), err
			}
			if t.Run.Opts.Package == "" {
				return Skipped("%s is not installed; the first deploy (or apply --package) installs it", pkg), nil
			}
			return Todo("install %s", filepath.Base(t.Run.Opts.Package)), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			b, err := os.ReadFile(t.Run.Opts.Package)
			if err != nil {
				return err
			}
			dst := inventory.PackageCache + "/" + filepath.Base(t.Run.Opts.Package)
			if err := t.T.Upload(ctx, dst, b, 0o644); err != nil {
				return err
			}
			name, err := host.DebField(ctx, t.T, dst, "Package")
			if err != nil {
				return err
			}
			if want := t.Inv().App.Package; name != want {
				return fmt.Errorf("%s is the package %q, but the inventory's app is %q", filepath.Base(dst), name, want)
			}
			return host.InstallDeb(ctx, t.T, dst, host.DebOptions{})
		},
	}
}

// migrateTimeout bounds the first install's migration, as deploy's
// default --migrate-timeout does.
const migrateTimeout = 30 * time.Minute

// migrateStep runs the package's migration (<package>-migrate.service,
// shipped when [tool.debship] migrate is set) once, on one node, after the
// first install and before the app resource exists: as a deploy migrates
// before a node takes traffic, the app never answers from an unmigrated
// database. Once the resource exists, migrations are the deploys'.
func migrateStep() Step {
	return Step{
		Name: "app migration",
		Hint: "the migration runs as the package's -migrate.service on the node (journalctl -u there); apply runs it again, before the app starts, until it succeeds " +
			"(a fix in a new .deb: apt-get remove the package on the nodes, then apply --package the new one)",
		Check: func(ctx context.Context, t *Target) (State, error) {
			if t.Run.migrated.Load() {
				return Done(), nil
			}
			ok, missing, err := appInstalledEverywhere(ctx, t)
			if err != nil {
				return State{}, err
			}
			if !ok {
				return Skipped("runs after %s is installed on %s", t.Inv().App.Package, strings.Join(missing, ", ")), nil
			}
			p, err := host.ReadPrimitive(ctx, t.T, inventory.ResourceApp)
			switch {
			case err != nil && !host.ClusterUp(ctx, t.T):
				return Skipped("runs once the cluster runs, before the app resource is created"), nil
			case err != nil:
				return State{}, err
			case p != nil:
				return Done(), nil // the app has started: deploys migrate
			}
			unit := debbuild.MigrateUnit(t.Inv().App.Package)
			has, err := host.HasUnitFile(ctx, t.T, unit)
			if err != nil || !has {
				return Done(), err // the package has no migration
			}
			return Todo("run %s once before the app starts", unit), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			unit := debbuild.MigrateUnit(t.Inv().App.Package)
			mctx, cancel := context.WithTimeout(ctx, migrateTimeout)
			m, err := host.RunMigration(mctx, t.T, unit)
			cancel()
			if err != nil {
				// Cut off: it must not go on running on its own.
				sctx, c := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				_ = host.Stop(sctx, t.T, unit)
				c()
				return fmt.Errorf("the migration %s did not finish (%w), so the app was not started", unit, err)
			}
			if m.Failed() {
				out := "it printed nothing (journalctl -u " + unit + " on the node has systemd's view)"
				if len(m.Output) > 0 {
					out = "its output ends:\n  " + strings.Join(m.Output, "\n  ")
				}
				return fmt.Errorf("the migration %s %s, so the app was not started; %s", unit, m.How(), out)
			}
			t.Run.migrated.Store(true)
			return nil
		},
	}
}

// appInstalledEverywhere reports whether every member has the app.
func appInstalledEverywhere(ctx context.Context, t *Target) (bool, []string, error) {
	var missing []string
	for _, n := range t.Inv().Members() {
		v, err := host.InstalledVersion(ctx, t.Peer(n.Name).T, t.Inv().App.Package)
		if err != nil {
			return false, nil, err
		}
		if v == "" {
			missing = append(missing, n.Name)
		}
	}
	return len(missing) == 0, missing, nil
}

func appSpec(inv *inventory.Inventory) host.Resource {
	unit := strings.TrimSuffix(inv.AppUnit(), ".service")
	return host.Resource{ID: inventory.ResourceApp, Agent: "systemd:" + unit,
		// migration-threshold=1: an app that fails on the node holding the
		// floating IP gives it up at once instead of being restarted there;
		// after failure-timeout the node may run it again.
		Create: "op monitor interval=5s timeout=20s op start timeout=60s op stop timeout=60s " +
			"meta migration-threshold=1 failure-timeout=120s clone",
		CloneMeta: map[string]string{"interleave": "true"}}
}

func appResourceStep() Step {
	inner := resourceStep("app resource", func(t *Target) (host.Resource, bool) { return appSpec(t.Inv()), true })
	return Step{
		Name: "app resource",
		Hint: inner.Hint,
		Check: func(ctx context.Context, t *Target) (State, error) {
			st, err := inner.Check(ctx, t)
			if err != nil || st.Done {
				return st, err
			}
			ok, missing, err := appInstalledEverywhere(ctx, t)
			if err != nil {
				return State{}, err
			}
			if !ok {
				return Skipped("created after %s is installed on %s", t.Inv().App.Package, strings.Join(missing, ", ")), nil
			}
			return st, nil
		},
		Apply: inner.Apply,
	}
}

// constraints reads the CIB's constraints; none when pacemaker does not
// answer (yet), which the step then creates.
func constraints(ctx context.Context, t *Target) *host.Constraints {
	c, err := host.ReadConstraints(ctx, t.T)
	if err != nil {
		return &host.Constraints{}
	}
	return c
}

// constraintsStep keeps the floating IP on a node with a running app
// instance, started after it.
func constraintsStep() Step {
	want := []struct {
		id  string
		add func(ctx context.Context, t transport.Transport) error
	}{
		{constraintColoc, func(ctx context.Context, t transport.Transport) error {
			return host.AddColocation(ctx, t, constraintColoc, inventory.ResourceFloatingIP, inventory.ResourceAppClone)
		}},
		{constraintOrder, func(ctx context.Context, t transport.Transport) error {
			return host.AddOrder(ctx, t, constraintOrder, inventory.ResourceAppClone, inventory.ResourceFloatingIP)
		}},
	}
	return Step{
		Name: "floating IP follows the app",
		Check: func(ctx context.Context, t *Target) (State, error) {
			if p, err := host.ReadPrimitive(ctx, t.T, inventory.ResourceApp); err != nil || p == nil {
				return Skipped("after the app resource"), nil
			}
			c := constraints(ctx, t)
			var miss []string
			for _, w := range want {
				if !c.Has(w.id) {
					miss = append(miss, w.id)
				}
			}
			return doneIf(len(miss) == 0, "add %s", strings.Join(miss, ", ")), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			c := constraints(ctx, t)
			for _, w := range want {
				if !c.Has(w.id) {
					if err := w.add(ctx, t.T); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
}
