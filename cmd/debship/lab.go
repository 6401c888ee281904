package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/cluster/lab"
)

func labCommand() *cli.Command {
	dirFlag := &cli.StringFlag{
		Name:  "dir",
		Value: lab.DefaultDir,
		Usage: "lab state `DIR`: inventory, SSH key, known_hosts, node layers",
	}
	return &cli.Command{
		Name:  "lab",
		Usage: "a real Debian HA cluster on this machine, for rehearsing deploys",
		Description: `The lab boots Debian 13 nodes (Debian 12 with "lab up --release bookworm")
with systemd-nspawn (systemd as PID 1), each an
overlay over one cached base root, each in its own network namespace on a
private bridge (10.231.0.0/24: this host .1, nodes .11 .12 .13, floating IP
.100). The nodes have no route out. sshd runs on every node with an admin
user that has the lab key and passwordless sudo; corosync, pacemaker, pcs,
glusterfs, wireguard, ufw and fail2ban are installed but not enabled, so that
"debship cluster apply -i <dir>/cluster.toml" does the real work.

The lab needs root and the Debian packages debootstrap, systemd-container,
iproute2 and openssh-client. The first "lab up" builds the base root from
this host's apt mirror (1-4 minutes, cached in ` + lab.DefaultCacheDir + `);
later runs boot in seconds. One lab runs per machine at a time.

Examples:
   debship lab up --nodes 3
   debship lab up --release bookworm
   debship lab ssh node1 -- sudo journalctl -u corosync
   debship lab crash node1 && debship lab start node1
   debship lab snapshot save applied && debship lab up --snapshot applied
   debship lab down`,
		Subcommands: []*cli.Command{
			labUpCommand(dirFlag),
			labStatusCommand(dirFlag),
			labSnapshotCommand(dirFlag),
			labPrepareCommand(),
			labSSHCommand(dirFlag),
			labNodeCommand(dirFlag, "crash", "power loss: pull a node's cable and kill its PID 1",
				"The node's network link goes down, then its systemd (PID 1) is SIGKILLed, which\n"+
					"kills everything in it at once: no shutdown, no goodbye to the cluster. Its disk\n"+
					"stays as it was. Boot it again with: debship lab start NODE",
				(*lab.Lab).Crash),
			labNodeCommand(dirFlag, "start", "boot a stopped or crashed node and wait for SSH",
				"Boots the node with its cable plugged in (a floating IP it held before a crash\n"+
					"is gone, as after a real reboot) and returns when the admin user can log in.\n"+
					"A running node is left alone.",
				(*lab.Lab).Start),
			labNodeCommand(dirFlag, "partition", "cut a node's network link; it keeps running",
				"The node keeps running but can reach neither the other nodes nor this host,\n"+
					"and they cannot reach it. Restore the link with: debship lab heal NODE",
				(*lab.Lab).Partition),
			labNodeCommand(dirFlag, "heal", "restore a partitioned node's network link",
				"Brings the node's link back up after \"debship lab partition\".",
				(*lab.Lab).Heal),
			labDownCommand(dirFlag),
		},
	}
}

// labContext is cancelled by Ctrl-C, so a lab command stops cleanly and the
// next "lab up" finds little to clean.
func labContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
}

func labUpCommand(dirFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "bring the lab up (the first run builds the base root)",
		Description: `Boots 2 nodes (or 3 with --nodes 3: node3 is the tie-breaker) of Debian 13
"trixie" (or --release bookworm for Debian 12) and waits until
the admin user can log in to each with strict host-key checking. Writes
cluster.toml, the SSH key id_ed25519 and known_hosts into the lab directory and
prints the inventory's path as the last line.

If the same lab is already up, only stopped nodes are started and pulled
cables plugged in. Anything else left on the machine (a lab of another shape,
or the remains of a killed run) is removed first, and the nodes start from
the pristine base root. Each release has its own cached base root, built on
its first use.

With --snapshot NAME the lab comes back as "debship lab snapshot save NAME"
left it: the same nodes, disks, keys, host keys and inventory. Whatever lab
is up is replaced. When the snapshot holds an applied cluster, lab up waits
(3 minutes at most) until it serves again: quorum, every node online in
pacemaker, GlusterFS connected with nothing to heal, the app running on every
node.

Examples:
   debship lab up
   debship lab up --nodes 3 --release bookworm
   debship lab up --snapshot applied`,
		Flags: []cli.Flag{
			dirFlag,
			&cli.IntFlag{Name: "nodes", Value: lab.DefaultNodes, Usage: "number of nodes: 2, or 3 with a tie-breaker"},
			&cli.StringFlag{Name: "release", Value: lab.DefaultRelease, Usage: "the nodes' Debian `RELEASE`: " + strings.Join(lab.Releases(), " or ")},
			&cli.StringFlag{Name: "subnet", Value: lab.DefaultSubnet.String(), Usage: "lab network, an IPv4 `/24`"},
			&cli.StringFlag{Name: "cache", Value: lab.DefaultCacheDir, Usage: "`DIR` of the cached base root"},
			&cli.StringFlag{Name: "snapshot", Usage: "bring back the saved snapshot `NAME` (see: debship lab snapshot) and wait until its cluster serves"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("lab up takes no arguments, got %q", c.Args().First())
			}
			if n := c.Int("nodes"); n != 2 && n != 3 {
				return usagef("--nodes must be 2 or 3, not %d", n)
			}
			if r := c.String("release"); !slices.Contains(lab.Releases(), r) {
				return usagef("--release must be %s, not %q", strings.Join(lab.Releases(), " or "), r)
			}
			subnet, err := netip.ParsePrefix(c.String("subnet"))
			if err != nil || !subnet.Addr().Is4() || subnet.Bits() != 24 {
				return usagef("--subnet must be an IPv4 /24 such as %s, not %q", lab.DefaultSubnet, c.String("subnet"))
			}
			o := lab.Options{
				Dir:      c.String("dir"),
				CacheDir: c.String("cache"),
				Nodes:    c.Int("nodes"),
				Release:  c.String("release"),
				Subnet:   subnet,
				Snapshot: c.String("snapshot"),
				Progress: os.Stderr,
			}
			if o.Snapshot != "" {
				if err := lab.CheckSnapshotName(o.Snapshot); err != nil {
					return usagef("--snapshot: %v", err)
				}
				// The snapshot has a shape of its own; only a shape given
				// on the command line is checked against it.
				if !c.IsSet("nodes") {
					o.Nodes = 0
				}
				if !c.IsSet("release") {
					o.Release = ""
				}
				if !c.IsSet("subnet") {
					o.Subnet = netip.Prefix{}
				}
			}
			ctx, cancel := labContext(c)
			defer cancel()
			l, err := labUp(ctx, o)
			if err != nil {
				return err
			}
			printLabStatus(l.Status(ctx))
			fmt.Println(l.InventoryPath())
			return nil
		},
	}
}

func labStatusCommand(dirFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the nodes, their addresses and state, and the inventory to use",
		Description: `For every node: address, state (running or stopped), link (up, or down when
partitioned or crashed), whether the admin user can log in right now, and
memory (proportional set size of all its processes). Exits 1 when no lab
is up.`,
		Flags: []cli.Flag{dirFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("lab status takes no arguments, got %q", c.Args().First())
			}
			l, err := lab.Open(c.String("dir"))
			if err != nil {
				return err
			}
			st := l.Status(c.Context)
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printLabStatus(st)
			return nil
		},
	}
}

func printLabStatus(st lab.Status) {
	fmt.Printf("lab %s: Debian %s, subnet %s, this host %s, floating IP %s\n", st.Dir, st.Release, st.Subnet, st.Host, st.FloatingIP)
	fmt.Printf("inventory: %s\n\n", st.Inventory)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tADDRESS\tROLE\tSTATE\tLINK\tSSH\tMEMORY")
	for _, n := range st.Nodes {
		role, ssh, mem := n.Role, "no", "-"
		if role == "" {
			role = "member"
		}
		if n.SSH {
			ssh = "ok"
		}
		if n.MemoryBytes > 0 {
			mem = fmt.Sprintf("%d MiB", n.MemoryBytes>>20)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Address, role, n.State, n.Link, ssh, mem)
	}
	w.Flush()
}

func labSSHCommand(dirFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:      "ssh",
		Usage:     "a shell or a command on a node",
		ArgsUsage: "NODE [-- COMMAND [ARGS...]]",
		Description: `Runs the system ssh client as the admin user (or --user) with the lab key and
strict host-key checking against the lab's known_hosts. Put "--" before a
command that has options of its own.

Examples:
   debship lab ssh node1
   debship lab ssh node2 -- sudo systemctl --failed
   debship lab ssh --user root node1 hostname`,
		Flags: []cli.Flag{dirFlag, &cli.StringFlag{Name: "user", Value: lab.AdminUser, Usage: "log in as `USER`"}},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usagef("lab ssh needs a NODE, e.g. debship lab ssh node1")
			}
			l, err := lab.Open(c.String("dir"))
			if err != nil {
				return err
			}
			node, command := c.Args().First(), c.Args().Tail()
			if len(command) > 0 && command[0] == "--" {
				command = command[1:]
			}
			if _, err := l.Node(node); err != nil {
				return usagef("%v", err)
			}
			return l.ExecSSH(node, c.String("user"), command)
		},
	}
}

func labNodeCommand(dirFlag cli.Flag, name, usage, desc string, do func(*lab.Lab, context.Context, string) error) *cli.Command {
	return &cli.Command{
		Name:        name,
		Usage:       usage,
		ArgsUsage:   "NODE",
		Description: desc,
		Flags:       []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("lab %s takes one NODE, e.g. debship lab %s node1", name, name)
			}
			l, err := lab.Open(c.String("dir"))
			if err != nil {
				return err
			}
			if _, err := l.Node(c.Args().First()); err != nil {
				return usagef("%v", err)
			}
			ctx, cancel := labContext(c)
			defer cancel()
			l.SetProgress(os.Stderr)
			return do(l, ctx, c.Args().First())
		},
	}
}

func labDownCommand(dirFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "down",
		Usage: "stop the lab and remove everything it made on this host",
		Description: `Powers the nodes off (SIGKILL after 10 s) and removes their processes, mounts,
network namespaces, veths, the bridge, cgroups and nspawn's tmpfs, then the
node layers: the next "lab up" starts from the pristine base root. The SSH
key, the nodes' host keys and the cached base root stay. Safe to run when no
lab is up: it removes whatever a killed run left.`,
		Flags: []cli.Flag{dirFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("lab down takes no arguments, got %q", c.Args().First())
			}
			ctx, cancel := labContext(c)
			defer cancel()
			return lab.Down(ctx, lab.Options{Dir: c.String("dir"), Progress: os.Stderr})
		},
	}
}

func labPrepareCommand() *cli.Command {
	return &cli.Command{
		Name:  "prepare",
		Usage: "build the cached base root of a release now, without booting a lab",
		Description: `The first "lab up" of a release builds its base root (1-4 minutes: debootstrap
and the lab's packages from this host's apt mirror). "lab prepare" does it
ahead of time, e.g. while a CI image is made or before tests whose timing
matters; a root already cached is left as it is. It boots nothing and
leaves a running lab alone.

Examples:
   debship lab prepare
   debship lab prepare --release bookworm`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "release", Value: lab.DefaultRelease, Usage: "the Debian `RELEASE`: " + strings.Join(lab.Releases(), " or ")},
			&cli.StringFlag{Name: "cache", Value: lab.DefaultCacheDir, Usage: "`DIR` of the cached base root"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("lab prepare takes no arguments, got %q", c.Args().First())
			}
			if r := c.String("release"); !slices.Contains(lab.Releases(), r) {
				return usagef("--release must be %s, not %q", strings.Join(lab.Releases(), " or "), r)
			}
			ctx, cancel := labContext(c)
			defer cancel()
			return lab.Prepare(ctx, lab.Options{Release: c.String("release"), CacheDir: c.String("cache"), Progress: os.Stderr})
		},
	}
}
