package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/ci/gitlab"
	"gitlab.com/debship/debship/cluster/deploy"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/progress"
	"gitlab.com/debship/debship/cluster/ship"
)

// deployFlags are the flags of deploy, rollback and ship.
func deployFlags() []cli.Flag {
	return append(clusterFlags(),
		&cli.BoolFlag{Name: "dry-run", Usage: "run the read-only checks and print the plan; change nothing (not even the lock)"},
		&cli.BoolFlag{Name: "force-unlock", Usage: "take the deploy lock over from a deploy that died (shows who held it)"},
		&cli.BoolFlag{Name: "json", Usage: "print progress as JSON events, one per line, on stdout"},
		&cli.StringFlag{Name: "holder", Usage: "`NAME` recorded in the lock and the history (default: $GITLAB_USER_LOGIN in CI, else your user name)"},
		&cli.IntFlag{Name: "health-status", Value: 200, Usage: "HTTP `STATUS` the health path must answer"},
		&cli.DurationFlag{Name: "health-timeout", Value: 5 * time.Second, Usage: "`TIME` each health request may take"},
		&cli.IntFlag{Name: "health-retries", Value: 30, Usage: "health requests (`N`) before a node counts as failed"},
		&cli.DurationFlag{Name: "health-interval", Value: time.Second, Usage: "`TIME` between health requests"},
		&cli.DurationFlag{Name: "settle-timeout", Value: 2 * time.Minute, Usage: "`TIME` to wait for pacemaker to stop, start or move something"},
		&cli.DurationFlag{Name: "install-timeout", Value: 10 * time.Minute, Usage: "`TIME` apt-get may take on a node"},
		&cli.BoolFlag{Name: "skip-migrate", Usage: "do not run the package's migration ([tool.debship] migrate) on the first updated node: only in an emergency, when the schema is already where the new version needs it"},
		&cli.DurationFlag{Name: "migrate-timeout", Value: 30 * time.Minute, Usage: "`TIME` the migration may take before it is stopped and the node goes back"},
		&cli.DurationFlag{Name: "drain", Value: 10 * time.Second, Usage: "`TIME` long requests in flight may take to finish before the floating IP moves; new connections are still served meanwhile (0: move at once)"},
	)
}

const deployProcedure = `Before anything changes (if one check fails, nothing is changed and each
problem is named in one sentence): every node answers over SSH and is online
in pacemaker, the cluster has quorum, no failed actions, no maintenance
mode, gluster peers connected and nothing to heal; the .deb passes the
checks of "debship inspect --check" and is the inventory's [app] package;
apt on every node can install it (its Depends resolve); every node has the
.deb of the version it runs (for rollback); and the deploy lock is free.

Then the .deb is copied to every node (/var/cache/debship, SHA-256
verified), the deploy lock is taken (in the cluster's CIB: holder, host,
time, version), and the nodes are updated one at a time, the node without
the floating IP first:

  1. the node serving the floating IP must pass its health check (the last
     healthy instance is never stopped);
  2. pacemaker stops the app on the node (crm_resource --ban): it holds no
     floating IP, so no client is talking to it;
  3. apt-get installs the .deb (new Depends are resolved); on the first
     node only, the package's migration runs ([tool.debship] migrate:
     systemctl start <package>-migrate.service, as the service's user with
     its environment, DEBSHIP_SHARED_DIR included), once per deploy and
     rollback (a rollback runs the target version's own migration), unless
     --skip-migrate;
  4. the ban is lifted and pacemaker starts the new version;
  5. the health path answers on the node's own address with the expected
     status (and, if the body names a version, the new one).

Then the floating IP moves once, to the updated node: on the node that
holds it, long requests in flight finish (--drain) while new connections
are still served, then new connections are passed on to the updated node
(which serves them before and after it has the IP), the short requests
finish, kept-alive connections are reset once idle (their clients' next
requests held back first, so no answer is cut short), and pacemaker
moves the IP. Where the nodes are not on one network or iptables
cannot pass connections on, new connections are held back instead (the
client's kernel sends the SYN again after 1 s) and the deploy warns. The last node is
updated the same way. A failed install, migration, start or health check
puts that node back to its previous .deb and into service, and the deploy stops with
exit 1 and a summary; the nodes not yet updated are never touched.

Every deploy and its outcome is appended to the history on each node
(debship cluster history). Progress: live lines per node on a terminal,
plain log lines otherwise, JSON events with --json. Ctrl-C finishes (or
rolls back) the node being updated, then stops and releases the lock.`

func deployCommand() *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "install a new .deb on the cluster, one node at a time, without dropping requests",
		ArgsUsage: "PKG.deb...",
		Description: `Rolls PKG.deb across the cluster the inventory describes. Given the .debs
of one version for several Debian releases (as the pipeline builds them),
it deploys the one built for the release the nodes run.

` + deployProcedure + `

Examples:
   debship deploy -i cluster.toml dist/hello-web_1.5-1+deb13u1_all.deb
   debship deploy -i cluster.toml dist/hello-web_1.5-1+deb13u1_all.deb --dry-run
   debship deploy -i cluster.toml dist/hello-web_1.5-1+deb13u1_all.deb dist/hello-web_1.5-1+deb12u1_all.deb
   debship deploy -i cluster.toml --json dist/hello-web_1.5-1+deb13u1_all.deb > events.jsonl
   debship deploy -i cluster.toml --force-unlock dist/hello-web_1.5-1+deb13u1_all.deb
   debship deploy -i cluster.toml --skip-migrate dist/hello-web_1.5-1+deb13u1_all.deb   # emergency: no migration
   debship deploy -i cluster.toml --ssh-key "$DEBSHIP_SSH_KEY" --known-hosts "$DEBSHIP_KNOWN_HOSTS" "$DEB_PATH_DEBIAN_13" "$DEB_PATH_DEBIAN_12"   # the CI job`,
		Flags: deployFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usagef("deploy takes a .deb (or one per Debian release), got none (the inventory is given with -i)")
			}
			for _, deb := range c.Args().Slice() {
				if _, err := os.Stat(deb); err != nil {
					return usagef("%v", err)
				}
			}
			return runDeploy(c, c.Args().Slice(), deploy.KindDeploy)
		},
	}
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:  "rollback",
		Usage: "go back to the previous version everywhere, with the same rolling procedure",
		Description: `Deploys the version the nodes ran before the last successful deploy (or the
one given with --to), taken from the nodes' cache (/var/cache/debship, where
every deploy keeps the previous version's .deb), with the same checks and the
same one-node-at-a-time procedure as deploy:

` + deployProcedure + `

Examples:
   debship rollback -i cluster.toml
   debship rollback -i cluster.toml --to 1.4-1 --dry-run
   debship rollback -i cluster.toml --skip-migrate   # emergency: not even 1.4-1's own migration`,
		Flags: append(deployFlags(), &cli.StringFlag{Name: "to", Usage: "Debian `VERSION` to go back to (default: the one before the last successful deploy)"}),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("rollback takes no arguments, got %q (use --to VERSION)", c.Args().First())
			}
			return runDeploy(c, nil, deploy.KindRollback)
		},
	}
}

func deployHolder(c *cli.Context) string {
	if h := c.String("holder"); h != "" {
		return h
	}
	if u := os.Getenv("GITLAB_USER_LOGIN"); u != "" {
		if j := os.Getenv("CI_JOB_ID"); j != "" {
			return u + " (CI job " + j + ")"
		}
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

func deployOptions(c *cli.Context, inv *inventory.Inventory, co inventory.ConnectOptions, deb, kind string) deploy.Options {
	return deploy.Options{
		Inventory: inv, Connect: co, Deb: deb, Kind: kind, RollbackTo: c.String("to"),
		DryRun: c.Bool("dry-run"), ForceUnlock: c.Bool("force-unlock"), Holder: deployHolder(c),
		Health: deploy.HealthCheck{Status: c.Int("health-status"), Timeout: c.Duration("health-timeout"),
			Retries: c.Int("health-retries"), Interval: c.Duration("health-interval")},
		Settle: c.Duration("settle-timeout"), InstallTimeout: c.Duration("install-timeout"), Drain: drain(c),
		SkipMigrate: c.Bool("skip-migrate"), MigrateTimeout: c.Duration("migrate-timeout"),
	}
}

// drain maps --drain 0 (no draining) to the negative duration of Options.
func drain(c *cli.Context) time.Duration {
	if d := c.Duration("drain"); d > 0 {
		return d
	}
	return -1
}

// progressFor picks the output: JSON events, live lines on a terminal, or
// plain log lines.
func progressFor(c *cli.Context, inv *inventory.Inventory) progress.Progress {
	if c.Bool("json") {
		return progress.JSONProgress(os.Stdout)
	}
	if progress.IsTerminal(os.Stderr) && os.Getenv("TERM") != "dumb" {
		var nodes []string
		for _, n := range inv.Members() {
			nodes = append(nodes, n.Name)
		}
		return progress.TerminalProgress(os.Stderr, nodes)
	}
	return progress.LinesProgress(os.Stderr)
}

func runDeploy(c *cli.Context, debs []string, kind string) error {
	inv, co, err := inventoryFlags(c)
	if err != nil {
		return err
	}
	if c.Int("health-retries") < 1 {
		return usagef("--health-retries must be at least 1")
	}
	ctx, cancel := clusterContext(c)
	defer cancel()
	deb := ""
	if len(debs) > 0 {
		if deb, err = ship.PickDeb(ctx, inv, co, debs); err != nil {
			return err
		}
	}
	_, err = deployWith(ctx, c, deployOptions(c, inv, co, deb, kind))
	return err
}

// deployWith runs the deploy with the progress output the flags ask for,
// and prints the plan of a dry run or the outcome.
func deployWith(ctx context.Context, c *cli.Context, o deploy.Options) (*deploy.Result, error) {
	prog := progressFor(c, o.Inventory)
	o.Progress = prog
	res, err := deploy.Run(ctx, o)
	prog.Close()
	if c.Bool("json") {
		// The result event carried everything; errors still go to stderr.
		return res, err
	}
	if res != nil && res.Plan != nil && o.DryRun {
		res.Plan.Write(os.Stdout)
	}
	if err == nil && res != nil && res.Message != "" {
		fmt.Println(res.Message)
	}
	// A preflight failure lists its problems, a failed deploy its summary
	// (what happened, what each node runs now): main prints either, exit 1.
	return res, err
}

func shipCommand() *cli.Command {
	return &cli.Command{
		Name:      "ship",
		Usage:     "release and deploy: build the .deb if needed, publish it as a GitLab release, deploy it",
		ArgsUsage: "[PROJECT-DIR]",
		Description: `For the CI deploy job and for a person at a terminal: takes the .deb of the
project's current version from PROJECT-DIR/dist (building it with "debship
build" when it is not there), publishes it as "debship release" does (GitLab
generic package registry and release of the tag), then deploys exactly that
file as "debship deploy" does. The release is idempotent, so a ship that
failed in the deploy can simply be run again.

GitLab settings come from the CI variables (CI_API_V4_URL, CI_PROJECT_ID,
CI_COMMIT_TAG, CI_JOB_TOKEN) or --gitlab-url, --project, --tag and
GITLAB_TOKEN, as for "debship release". --no-release deploys without
publishing.

Deploy:
` + deployProcedure + `

Examples:
   debship ship -i cluster.toml                      # in a tag pipeline
   GITLAB_TOKEN=... debship ship -i cluster.toml --gitlab-url https://gitlab.example.com \
       --project group/app --tag v1.5.0
   debship ship -i cluster.toml --skip-migrate       # emergency: deploy without the migration`,
		Flags: append(append(deployFlags(),
			&cli.StringFlag{Name: "gitlab-url", Usage: "GitLab `URL` (default $CI_API_V4_URL)"},
			&cli.StringFlag{Name: "project", Usage: "project `ID` or path (default $CI_PROJECT_ID)"},
			&cli.StringFlag{Name: "tag", Usage: "release `TAG` (default $CI_COMMIT_TAG, else v<version>)"},
			&cli.StringFlag{Name: "ref", Usage: "commit to create the tag from if it does not exist (default $CI_COMMIT_SHA)"},
			&cli.BoolFlag{Name: "no-release", Usage: "deploy without publishing a GitLab release"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "where the .deb is looked for and built (`DIR`, default PROJECT-DIR/dist)"},
		), pipFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("ship takes at most one PROJECT-DIR, got %d arguments", c.NArg())
			}
			// Checked before anything is built or released.
			inv, co, err := inventoryFlags(c)
			if err != nil {
				return err
			}
			var release *gitlab.Config
			if !c.Bool("no-release") {
				cfg := gitlabConfig(c)
				release = &cfg
			}
			ctx, cancel := clusterContext(c)
			defer cancel()
			_, err = ship.Run(ctx, ship.Options{
				Dir:     c.Args().First(),
				Output:  c.String("output"),
				Build:   pipOptions(c),
				Release: release,
				Deploy:  deployOptions(c, inv, co, "", deploy.KindDeploy),
				RunDeploy: func(ctx context.Context, o deploy.Options) (*deploy.Result, error) {
					return deployWith(ctx, c, o)
				},
				Log: os.Stderr,
			})
			return err
		},
	}
}

// clusterHistoryCommand is "debship cluster history" (listed in
// cluster.go's subcommands).
func clusterHistoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "the deploys and rollbacks of the cluster, with their outcome",
		Description: `Every deploy and rollback appends its start and its end (outcome, what each
node went from and to, whether the floating IP moved, how long it took) to
` + deploy.HistoryFile + ` on every node that runs the app. This reads the
history of every node that answers and merges it, oldest first. A deploy with
a start but no end is "running" while it holds the deploy lock, else
"interrupted".

Examples:
   debship cluster history -i cluster.toml
   debship cluster history -i cluster.toml --json`,
		Flags: append(clusterFlags(),
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.IntFlag{Name: "last", Aliases: []string{"n"}, Usage: "only the last `N` entries"}),
		Action: inventoryAction(func(ctx context.Context, c *cli.Context, inv *inventory.Inventory, co inventory.ConnectOptions) error {
			conns, errs := inventory.Connect(ctx, inv, co)
			defer inventory.CloseAll(conns)
			if len(conns) == 0 {
				var l []string
				for _, e := range errs {
					l = append(l, e.Error())
				}
				return fmt.Errorf("no node answers: %s", strings.Join(l, "; "))
			}
			entries, herr := deploy.History(ctx, inv, conns)
			if n := c.Int("last"); n > 0 && len(entries) > n {
				entries = entries[len(entries)-n:]
			}
			if c.Bool("json") {
				if entries == nil {
					entries = []deploy.Entry{}
				}
				if err := writeJSON(entries); err != nil {
					return err
				}
			} else {
				deploy.WriteHistory(os.Stdout, entries)
			}
			if herr != nil {
				fmt.Fprintf(os.Stderr, "warning: %v\n", herr)
			}
			return nil
		}),
	}
}
