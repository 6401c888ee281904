package setup

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
)

func storagePhase(inv *inventory.Inventory) Phase {
	s := inv.Storage
	if s == nil {
		return Phase{Name: PhaseStorage}
	}
	primary := []inventory.Node{inv.Primary()}
	return Phase{Name: PhaseStorage, Stages: []Stage{
		{Nodes: inv.Nodes, Steps: []Step{
			packagesStep("packages", func(t *Target) []string {
				if t.Node.Role == inventory.RoleTiebreaker {
					return []string{"glusterfs-server"}
				}
				return []string{"glusterfs-server", "glusterfs-client"}
			}),
			serviceStep("glusterd.service"),
			shStep("brick directory", "",
				"test -d "+q(s.Brick)+" && echo ok || echo "+q("create "+s.Brick),
				"mkdir -p "+q(s.Brick)),
		}},
		{Nodes: primary, Steps: []Step{peersStep(), volumeStep(), volumeOptionsStep(), volumeStartStep()}},
		{Nodes: inv.Members(), Steps: []Step{mountStep()}},
	}}
}

func peersStep() Step {
	missing := func(ctx context.Context, t *Target) ([]string, bool, error) {
		m := host.GlusterPeers(ctx, t.T)
		var miss []string
		connected := true
		for _, n := range others(t.Inv().Nodes, t.Node) {
			st, ok := m[t.Inv().ClusterAddr(n)]
			if !ok {
				miss = append(miss, t.Inv().ClusterAddr(n))
			} else if st != "Connected" {
				connected = false
			}
		}
		return miss, connected, nil
	}
	return Step{
		Name: "gluster peers",
		Hint: "glusterd on the nodes must reach each other on TCP 24007 (cluster addresses); see gluster peer status",
		Check: func(ctx context.Context, t *Target) (State, error) {
			miss, connected, err := missing(ctx, t)
			if err != nil {
				return State{}, err
			}
			if len(miss) > 0 {
				return Todo("peer probe %s", strings.Join(miss, " ")), nil
			}
			return doneIf(connected, "wait for the peers to connect"), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			miss, _, err := missing(ctx, t)
			if err != nil {
				return err
			}
			for _, a := range miss {
				if err := host.GlusterProbe(ctx, t.T, a); err != nil {
					return err
				}
			}
			return waitFor(ctx, time.Minute, func() (bool, string, error) {
				miss, connected, err := missing(ctx, t)
				return err == nil && len(miss) == 0 && connected, "peers not connected", err
			})
		},
	}
}

// waitFor polls f until it reports true or the limit passes.
func waitFor(ctx context.Context, limit time.Duration, f func() (bool, string, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, why, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %s", limit, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// bricks lists the volume's bricks: the members', then the tie-breaker's
// as the arbiter.
func bricks(inv *inventory.Inventory) []string {
	var b []string
	for _, n := range inv.Members() {
		b = append(b, inv.ClusterAddr(n)+":"+inv.Storage.Brick)
	}
	if tb, ok := inv.Tiebreaker(); ok {
		b = append(b, inv.ClusterAddr(tb)+":"+inv.Storage.Brick)
	}
	return b
}

// volume is the volume: replica on the members, with the tie-breaker's
// brick as the arbiter.
func volume(inv *inventory.Inventory) host.Volume {
	_, arbiter := inv.Tiebreaker()
	return host.Volume{Name: inv.Storage.Volume, Replica: len(bricks(inv)), Arbiter: arbiter, Bricks: bricks(inv), Force: inv.Storage.Force}
}

func volumeStep() Step {
	return Step{
		Name: "gluster volume",
		Hint: "gluster refuses bricks on the root file system unless force = true in [storage]; see the message above",
		Check: func(ctx context.Context, t *Target) (State, error) {
			info := host.ReadVolumeInfo(ctx, t.T, t.Inv().Storage.Volume)
			if info == "" {
				return Todo("%s", volume(t.Inv()).CreateArgs()), nil
			}
			for _, b := range bricks(t.Inv()) {
				if !info.HasBrick(b) {
					return State{}, fmt.Errorf("volume %s exists with other bricks than %s; change it by hand (gluster volume replace-brick) or pick another volume name",
						t.Inv().Storage.Volume, strings.Join(bricks(t.Inv()), " "))
				}
			}
			return Done(), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			return host.CreateVolume(ctx, t.T, volume(t.Inv()))
		},
	}
}

func volumeOptions(inv *inventory.Inventory) []setting {
	o := []setting{{name: "network.ping-timeout", value: strconv.Itoa(inv.Storage.PingTimeoutSeconds())}}
	if _, ok := inv.Tiebreaker(); ok {
		o = append(o, setting{name: "cluster.quorum-type", value: "auto"})
	}
	return o
}

func volumeOptionsStep() Step {
	return settingsStep("gluster volume options", func(t *Target) []setting { return volumeOptions(t.Inv()) },
		func(ctx context.Context, t *Target, s setting) (string, error) {
			return host.VolumeOption(ctx, t.T, t.Inv().Storage.Volume, s.name), nil
		},
		func(ctx context.Context, t *Target, s setting) error {
			return host.SetVolumeOption(ctx, t.T, t.Inv().Storage.Volume, s.name, s.value)
		})
}

func volumeStartStep() Step {
	return Step{
		Name: "gluster volume started",
		Check: func(ctx context.Context, t *Target) (State, error) {
			info := host.ReadVolumeInfo(ctx, t.T, t.Inv().Storage.Volume)
			return doneIf(info.Started(), "start volume %s", t.Inv().Storage.Volume), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			return host.StartVolume(ctx, t.T, t.Inv().Storage.Volume)
		},
	}
}

func fstabLine(t *Target) (string, error) {
	inv := t.Inv()
	var backups []string
	for _, n := range others(inv.Nodes, t.Node) {
		backups = append(backups, inv.ClusterAddr(n))
	}
	b, err := render("fstab-line", map[string]any{"Volume": inv.Storage.Volume, "Mount": inv.Storage.Mount, "Backups": backups})
	return strings.TrimSpace(string(b)), err
}

// mountStep keeps the volume in /etc/fstab (mounted at boot after glusterd,
// volfile from the other nodes when the local glusterd is down) and mounted.
func mountStep() Step {
	return Step{
		Name: "gluster mount",
		Hint: "the FUSE mount needs /dev/fuse; see the mount log in /var/log/glusterfs/ on the node",
		Check: func(ctx context.Context, t *Target) (State, error) {
			line, err := fstabLine(t)
			if err != nil {
				return State{}, err
			}
			mnt := t.Inv().Storage.Mount
			st, err := shState(ctx, t, fmt.Sprintf("grep -qxF -e %s /etc/fstab && echo ok || echo %s", q(line), q("add "+mnt+" to /etc/fstab")))
			if err != nil || !st.Done {
				return st, err
			}
			mounted, err := host.GlusterMounted(ctx, t.T, mnt)
			return doneIf(mounted, "mount %s", mnt), err
		},
		Apply: func(ctx context.Context, t *Target) error {
			line, err := fstabLine(t)
			if err != nil {
				return err
			}
			mnt := t.Inv().Storage.Mount
			fstab, err := t.Sh(ctx, "cat /etc/fstab")
			if err != nil {
				return err
			}
			var keep []string
			for _, l := range strings.Split(fstab, "\n") {
				if l == fstabComment {
					continue
				}
				if f := strings.Fields(l); len(f) >= 2 && f[1] == mnt && !strings.HasPrefix(l, "#") {
					continue
				}
				keep = append(keep, l)
			}
			keep = append(keep, fstabComment, line)
			if err := t.T.Upload(ctx, "/etc/fstab", []byte(strings.Join(keep, "\n")+"\n"), 0o644); err != nil {
				return err
			}
			if _, err := t.Sh(ctx, "mkdir -p "+q(mnt)); err != nil {
				return err
			}
			if err := host.DaemonReload(ctx, t.T); err != nil {
				return err
			}
			if mounted, err := host.GlusterMounted(ctx, t.T, mnt); err != nil || mounted {
				return err
			}
			_, err = t.Sh(ctx, "mount "+q(mnt))
			return err
		},
	}
}

const fstabComment = "# debship: the shared GlusterFS volume"
