package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/progress"
	"gitlab.com/debship/debship/cluster/setup"
	"gitlab.com/debship/debship/cluster/status"
)

func clusterFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Value: "cluster.toml", Usage: "the cluster's inventory `FILE`"},
		&cli.BoolFlag{Name: "accept-new-host-keys", Usage: "record host keys not yet in known_hosts (trust on first use); a changed key is always refused"},
		&cli.DurationFlag{Name: "connect-timeout", Value: 10 * time.Second, Usage: "`TIME` to wait for each SSH connection attempt (3 attempts)"},
	}, sshFileFlags()...)
}

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "set up and inspect the HA cluster an inventory describes",
		Description: `The cluster is described by one inventory (cluster.toml, see
examples/cluster.toml): the nodes and how to reach them over SSH, the floating
IP, the app's Debian package, the shared storage, the private network,
hardening and fencing.

Setup is a list of phases, each a list of steps with a read-only check:
   base      common tools, unattended security upgrades
   harden    ufw (deny by default, ssh rate limited, cluster ports only from
             the other nodes), fail2ban sshd jail, sshd key-only with modern
             algorithms (a second login is proven before the change is kept),
             rkhunter daily check and weekly update
   network   WireGuard (or tinc) between the nodes; keys never leave a node
   ha        corosync + pacemaker (two_node, or corosync-qnetd on the
             tie-breaker), fencing, the floating IP
   storage   a GlusterFS volume (replica 3 arbiter 1 with a tie-breaker),
             mounted on every node
   app       the app's package (apply --package) and its cloned systemd
             resource; the floating IP follows a running instance

SSH: host keys are checked against the known_hosts file of the inventory
(strict); commands run with sudo -n when the user is not root. --ssh-key and
--known-hosts replace the inventory's key and known_hosts (a CI job's files).`,
		Subcommands: []*cli.Command{clusterPlanCommand(), clusterApplyCommand(), clusterStatusCommand(),
			clusterHistoryCommand(), // deploy.go: the deploy history
		},
	}
}

func clusterContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
}

func loadInventory(c *cli.Context) (*inventory.Inventory, inventory.ConnectOptions, error) {
	if c.NArg() > 0 {
		return nil, inventory.ConnectOptions{}, usagef("%s takes no arguments, got %q (the inventory is given with -i)", c.Command.Name, c.Args().First())
	}
	return inventoryFlags(c)
}

// inventoryFlags reads the inventory -i names and the SSH options of the
// flags (checked against it).
func inventoryFlags(c *cli.Context) (*inventory.Inventory, inventory.ConnectOptions, error) {
	inv, err := inventory.Load(c.String("inventory"))
	if err != nil {
		return nil, inventory.ConnectOptions{}, err
	}
	co, err := connectOptions(c, inv)
	return inv, co, err
}

// inventoryAction is the Action of a command that takes no arguments and
// works on the inventory's cluster: it loads the inventory and runs f with
// a context that ends when the user interrupts.
func inventoryAction(f func(ctx context.Context, c *cli.Context, inv *inventory.Inventory, co inventory.ConnectOptions) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		inv, co, err := loadInventory(c)
		if err != nil {
			return err
		}
		ctx, cancel := clusterContext(c)
		defer cancel()
		return f(ctx, c, inv, co)
	}
}

// setupAction is the Action of cluster plan and apply: run (setup.Plan or
// setup.Apply) on the phases --only selects, with the progress output --json
// asks for, and with the --package to install if the command has that flag.
func setupAction(run func(context.Context, *inventory.Inventory, inventory.ConnectOptions, setup.Options) (*setup.Report, error), withPackage bool) cli.ActionFunc {
	return inventoryAction(func(ctx context.Context, c *cli.Context, inv *inventory.Inventory, co inventory.ConnectOptions) error {
		only, err := onlyPhases(c)
		if err != nil {
			return err
		}
		o := setup.Options{Only: only}
		if withPackage {
			o.Package = c.String("package")
		}
		if o.Package != "" {
			if _, err := os.Stat(o.Package); err != nil {
				return usagef("--package: %v", err)
			}
		}
		prog := setupProgress(c)
		defer prog.Close()
		o.Progress = prog
		_, err = run(ctx, inv, co, o)
		return err
	})
}

func onlyPhases(c *cli.Context) ([]string, error) {
	var out []string
	for _, v := range c.StringSlice("only") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			ok := false
			for _, n := range setup.PhaseNames {
				ok = ok || n == p
			}
			if !ok {
				return nil, usagef("--only %s: unknown phase; the phases are %s", p, strings.Join(setup.PhaseNames, ", "))
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// setupProgress is where a plan or an apply reports: JSON events on
// stdout (--json), or the text: warnings and an apply's steps on stderr,
// the plan or an apply's summary on stdout.
func setupProgress(c *cli.Context) progress.Progress {
	if c.Bool("json") {
		return progress.JSONProgress(os.Stdout)
	}
	return setup.TextProgress(os.Stdout, os.Stderr)
}

func jsonEventsFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the progress events on stdout, one JSON object per line, and nothing else"}
}

func onlyFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "only", Usage: "only the `PHASE`s (" + strings.Join(setup.PhaseNames, ", ") + "; repeatable or comma-separated)"}
}

// Examples of the events of plan and apply --json, as printed (tested).
const (
	planExample  = `   {"time":"2026-03-02T10:15:04.512873914Z","type":"plan","phase":"harden","node":"node1","step":"ufw firewall","message":"ufw inactive"}`
	applyExample = `   {"time":"2026-03-02T10:15:06.031122208Z","type":"step","phase":"harden","node":"node1","step":"ufw firewall","status":"changed","message":"ufw inactive","took_s":1.52}`
)

func clusterPlanCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "show what apply would change, per node and phase; changes nothing",
		Description: `Connects to every node (all must answer) and runs every step's read-only
check. Prints the steps that would change, grouped by phase, or "nothing to
do" for a cluster that is as the inventory describes. Steps that wait for
something (the app resource before the first deploy) are listed as waiting.
Warnings about the inventory go to stderr.

--json prints the progress events instead, one JSON object per line on stdout
and nothing else (errors go to stderr, the exit code is the same), as deploy
--json does: a "log" event per warning, a "plan" event per step that would
change (or waits: "status":"skipped"; or whose check failed: "failed"), and
last a "result" event with the summary. A plan event:
` + planExample + `

Examples:
   debship cluster plan -i cluster.toml
   debship cluster plan -i cluster.toml --only harden --json`,
		Flags:  append(clusterFlags(), onlyFlag(), jsonEventsFlag()),
		Action: setupAction(setup.Plan, false),
	}
}

func clusterApplyCommand() *cli.Command {
	return &cli.Command{
		Name:  "apply",
		Usage: "set the cluster up as the inventory describes; a second run changes nothing",
		Description: `Connects to every node (if one does not answer, nothing is done on any), then
runs the phases in order. Each step whose check says it is not done yet is
applied and checked again; the nodes work in parallel where order does not
matter. A failing step stops its phase with the node, the command, its output
and a hint. Progress goes to stderr, the summary to stdout.

--json prints the progress events instead, one JSON object per line on stdout
and nothing else (errors go to stderr, the exit code is the same), as deploy
--json does: a "log" event per warning; "step" events as each phase (no
"node") and each step on each node starts ("running") and ends ("ok": was
done already, "changed", "skipped": waits, or "failed"); and last a "result"
event with the summary (changes per phase, the failed steps). A step event:
` + applyExample + `

--package installs the first version of the app on every node that runs it,
runs its migration ([tool.debship] migrate) once from one node, and then
creates the app's cluster resource, which starts the app; a failed migration
stops the apply with its output and starts nothing. The package must be
built in mode "cluster" ([tool.debship] mode = "cluster" in pyproject.toml):
one whose postinst starts the app itself is refused. Without --package, the
resource waits for the first "debship deploy" (no failed actions for a unit
that does not exist yet).

Examples:
   debship cluster apply -i cluster.toml --accept-new-host-keys
   debship cluster apply -i cluster.toml --package dist/hello-web_1.4-1+deb13u1_all.deb
   debship cluster apply -i cluster.toml --only harden
   debship cluster apply -i cluster.toml --json | jq -c 'select(.type == "result")'`,
		Flags: append(clusterFlags(), onlyFlag(),
			&cli.StringFlag{Name: "package", Usage: "install `PKG.deb` (the app's first version) where the app is not installed"}, jsonEventsFlag()),
		Action: setupAction(setup.Apply, true),
	}
}

func clusterStatusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "membership, quorum, floating IP, resources, storage, package versions, firewall",
		Description: `Reads the cluster's state over SSH and changes nothing: pacemaker membership
and quorum, who holds the floating IP, resources and failed actions, gluster
peers and pending heals, and per node the installed version of the app,
ufw and fail2ban. Nodes that do not answer are shown as unreachable. Exits 1
when the cluster is not healthy (no quorum, a member offline, failed actions,
gluster peers disconnected or heals pending).

--watch shows the state again every --interval until Ctrl-C, through one SSH
connection per node kept open: the hardening limits new SSH connections
(ufw limit: the 6th within 30 s is refused), so "watch debship cluster
status" or a script that runs status in a loop is locked out within
seconds. A node that does not answer is dialled again every 10 s at most.
With --json, one JSON object per line.

--wait DURATION is for scripts: it looks every second, through the same kept
connections, until the cluster serves (healthy, and the app running on every
node that runs it), prints that state and exits 0; or exits 1 after
DURATION with what is still wrong.

Examples:
   debship cluster status -i cluster.toml
   debship cluster status -i cluster.toml --json
   debship cluster status -i cluster.toml --watch --interval 5s
   debship cluster status -i cluster.toml --wait 3m`,
		Flags: append(clusterFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.BoolFlag{Name: "watch", Usage: "show the state again every --interval, over kept connections, until Ctrl-C"},
			&cli.DurationFlag{Name: "interval", Value: 2 * time.Second, Usage: "with --watch, the `DURATION` between two looks"},
			&cli.DurationFlag{Name: "wait", Usage: "wait up to `DURATION` until the cluster serves; exit 1 if it does not"}),
		Action: inventoryAction(func(ctx context.Context, c *cli.Context, inv *inventory.Inventory, co inventory.ConnectOptions) error {
			co.Attempts = 1 // a node that does not answer is part of the status
			show := func(st *status.Status) error {
				if c.Bool("json") {
					return writeJSON(st)
				}
				status.Write(os.Stdout, st)
				return nil
			}
			switch {
			case c.Bool("watch") && c.IsSet("wait"):
				return usagef("--watch and --wait: use one of them")
			case c.Duration("interval") < 100*time.Millisecond:
				return usagef("--interval must be at least 100ms, not %s", c.Duration("interval"))
			case c.Bool("watch"):
				ctx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer cancel()
				return status.Watch(ctx, inv, co, c.Duration("interval"), func(st *status.Status) error {
					if c.Bool("json") {
						return json.NewEncoder(os.Stdout).Encode(st) // one object per line
					}
					fmt.Printf("--- %s\n", time.Now().Format(time.RFC3339))
					return show(st)
				})
			case c.IsSet("wait"):
				st, err := status.WaitServing(ctx, inv, co, c.Duration("wait"))
				if sErr := show(st); sErr != nil {
					return sErr
				}
				if err != nil {
					return cli.Exit(err.Error(), 1)
				}
				return nil
			}
			st := status.Get(ctx, inv, co)
			if err := show(st); err != nil {
				return err
			}
			if ok, why := st.Healthy(); !ok {
				return cli.Exit("cluster not healthy: "+strings.Join(why, "; "), 1)
			}
			return nil
		}),
	}
}

func writeJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
