package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/lab"
	"gitlab.com/debship/debship/cluster/status"
)

// snapshotServeLimit bounds the wait for a restored cluster to serve: the
// nodes boot in seconds, then corosync forms the membership, pacemaker
// elects its DC and starts the resources.
const snapshotServeLimit = 3 * time.Minute

// labUp is lab.Up, and for a snapshot of an applied cluster the wait until
// that cluster serves again.
func labUp(ctx context.Context, o lab.Options) (*lab.Lab, error) {
	start := time.Now()
	l, err := lab.Up(ctx, o)
	if err != nil || o.Snapshot == "" {
		return l, err
	}
	if !l.Applied() {
		return l, nil
	}
	inv, err := inventory.Load(l.InventoryPath())
	if err != nil {
		return nil, fmt.Errorf("lab up --snapshot %s: %w", o.Snapshot, err)
	}
	if _, err := status.WaitServing(ctx, inv, inventory.ConnectOptions{Timeout: 5 * time.Second, Attempts: 1}, snapshotServeLimit); err != nil {
		return nil, fmt.Errorf("lab up --snapshot %s: %w", o.Snapshot, err)
	}
	fmt.Fprintf(os.Stderr, "lab up: cluster %s serving %s after %s\n", inv.Name, inv.FloatingIP.Address, time.Since(start).Round(100*time.Millisecond))
	return l, nil
}

func labSnapshotCommand(dirFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "save the lab's nodes as they are, to bring them back with lab up --snapshot",
		Description: `A snapshot keeps every node's disk (its overlay layer and brick directory)
and the lab's inventory, SSH key, host keys and known_hosts, in
<dir>/snapshots/NAME. Save one after "debship cluster apply" (and a first
deploy) to rehearse a risky deploy or an upgrade from the same state again
and again: "debship lab up --snapshot NAME" brings that cluster back in
seconds instead of an apply's minute. A snapshot fits the base root it was
saved over; when the base root is rebuilt (a new debship with another package
list), save it again.

Examples:
   debship lab snapshot save applied
   debship lab snapshot list
   debship lab up --snapshot applied
   debship lab snapshot rm applied`,
		Subcommands: []*cli.Command{
			{
				Name:      "save",
				Usage:     "save the running lab as NAME (the nodes are frozen for the copy, then run on)",
				ArgsUsage: "NAME",
				Description: `Every node must be running. The nodes are frozen (all their processes at
once, through their cgroup) while their disks are copied, so the snapshot is
what the disks held at one instant, as a VM snapshot; then they run on.
NAME is 1-63 lower-case letters, digits, '.', '_' or '-'. An existing
snapshot of that name is kept unless --force replaces it (the old one goes
only once the new one is whole).`,
				Flags: []cli.Flag{dirFlag, &cli.BoolFlag{Name: "force", Usage: "replace a snapshot of that name"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("lab snapshot save takes one NAME, e.g. debship lab snapshot save applied")
					}
					if err := lab.CheckSnapshotName(c.Args().First()); err != nil {
						return usagef("%v", err)
					}
					l, err := lab.Open(c.String("dir"))
					if err != nil {
						return err
					}
					ctx, cancel := labContext(c)
					defer cancel()
					l.SetProgress(os.Stderr)
					_, err = l.SaveSnapshot(ctx, c.Args().First(), c.Bool("force"))
					return err
				},
			},
			{
				Name:  "list",
				Usage: "list the saved snapshots",
				Description: `One line per snapshot, oldest first: name, when it was saved, the nodes'
Debian release, the number of nodes and the disk space it takes.`,
				Flags: []cli.Flag{dirFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return usagef("lab snapshot list takes no arguments, got %q", c.Args().First())
					}
					ss, err := lab.ListSnapshots(c.String("dir"))
					if err != nil {
						return err
					}
					return printSnapshots(ss, c.Bool("json"))
				},
			},
			{
				Name:        "rm",
				Usage:       "delete snapshots",
				ArgsUsage:   "NAME...",
				Description: "Deletes each named snapshot; the running lab is not touched.",
				Flags:       []cli.Flag{dirFlag},
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return usagef("lab snapshot rm takes one or more NAMEs, e.g. debship lab snapshot rm applied")
					}
					for _, name := range c.Args().Slice() {
						if err := lab.RemoveSnapshot(c.Context, c.String("dir"), name); err != nil {
							return err
						}
					}
					return nil
				},
			},
		},
	}
}

func printSnapshots(ss []lab.Snapshot, asJSON bool) error {
	if asJSON {
		if ss == nil {
			ss = []lab.Snapshot{}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ss)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCREATED\tRELEASE\tNODES\tSIZE")
	for _, s := range ss {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d MiB\n", s.Name, s.Created.Format(time.RFC3339), s.Release, len(s.Nodes), s.SizeBytes>>20)
	}
	return w.Flush()
}
