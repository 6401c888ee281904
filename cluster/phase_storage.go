package cluster

import (
	"gitlab.com/debship/debship/cluster/inventory"

	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
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
			{
				Name: "brick directory",
				Check: func(ctx context.Context, t *Target) (State, error) {
					return shState(ctx, t, "test -d "+q(s.Brick)+" && echo ok || echo 'create "+s.Brick+"'")
				},
				Apply: func(ctx context.Context, t *Target) error {
					_, err := t.Sh(ctx, "mkdir -p "+q(s.Brick))
					return err
				},
			},
		}},
		{Nodes: primary, Steps: []Step{peersStep(), volumeStep(), volumeOptionsStep(), volumeStartStep()}},
		{Nodes: inv.Members(), Steps: []Step{mountStep()}},
	}}
}

// peerStates parses "gluster pool list": UUID, hostname, state.
func peerStates(ctx context.Context, t *Target) (map[string]string, error) {
	out, _, err := t.T.Run(ctx, "gluster pool list 2>/dev/null")
	if err != nil {
		return nil, nil // glusterd not answering yet
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) == 3 {
			m[f[1]] = f[2]
		}
	}
	return m, nil
}

func peersStep() Step {
	missing := func(ctx context.Context, t *Target) ([]string, bool, error) {
		m, err := peerStates(ctx, t)
		if err != nil {
			return nil, false, err
		}
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
				if _, err := t.Sh(ctx, "gluster --mode=script peer probe "+q(a)); err != nil {
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

func volumeCreateCommand(inv *inventory.Inventory) string {
	s := inv.Storage
	layout := fmt.Sprintf("replica %d", len(inv.Members()))
	if _, ok := inv.Tiebreaker(); ok {
		layout = fmt.Sprintf("replica %d arbiter 1", len(inv.Members())+1)
	}
	cmd := fmt.Sprintf("gluster --mode=script volume create %s %s %s", s.Volume, layout, strings.Join(bricks(inv), " "))
	if s.Force {
		cmd += " force"
	}
	return cmd
}

var volTypeRE = regexp.MustCompile(`(?m)^Type:\s*(\S+)`)

func volumeInfo(ctx context.Context, t *Target) (string, error) {
	out, _, err := t.T.Run(ctx, "gluster volume info "+q(t.Inv().Storage.Volume)+" 2>/dev/null")
	if err != nil {
		return "", nil // no such volume, or glusterd not up
	}
	return string(out), nil
}

func volumeStep() Step {
	return Step{
		Name: "gluster volume",
		Hint: "gluster refuses bricks on the root file system unless force = true in [storage]; see the message above",
		Check: func(ctx context.Context, t *Target) (State, error) {
			info, err := volumeInfo(ctx, t)
			if err != nil {
				return State{}, err
			}
			if info == "" {
				return Todo("%s", strings.TrimPrefix(volumeCreateCommand(t.Inv()), "gluster --mode=script ")), nil
			}
			for _, b := range bricks(t.Inv()) {
				if !strings.Contains(info, ": "+b+"\n") && !strings.Contains(info, ": "+b+" (arbiter)\n") {
					return State{}, fmt.Errorf("volume %s exists with other bricks than %s; change it by hand (gluster volume replace-brick) or pick another volume name",
						t.Inv().Storage.Volume, strings.Join(bricks(t.Inv()), " "))
				}
			}
			return Done(), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			_, err := t.Sh(ctx, volumeCreateCommand(t.Inv()))
			return err
		},
	}
}

func volumeOptions(inv *inventory.Inventory) [][2]string {
	o := [][2]string{{"network.ping-timeout", strconv.Itoa(inv.Storage.PingTimeoutSeconds())}}
	if _, ok := inv.Tiebreaker(); ok {
		o = append(o, [2]string{"cluster.quorum-type", "auto"})
	}
	return o
}

func volumeOptionsStep() Step {
	diff := func(ctx context.Context, t *Target) ([][2]string, error) {
		var d [][2]string
		for _, o := range volumeOptions(t.Inv()) {
			out, _, err := t.T.Run(ctx, fmt.Sprintf("gluster volume get %s %s 2>/dev/null", q(t.Inv().Storage.Volume), o[0]))
			have := ""
			if err == nil {
				for _, l := range strings.Split(string(out), "\n") {
					if f := strings.Fields(l); len(f) >= 2 && f[0] == o[0] {
						have = f[1]
					}
				}
			}
			if have != o[1] {
				d = append(d, o)
			}
		}
		return d, nil
	}
	return Step{
		Name: "gluster volume options",
		Check: func(ctx context.Context, t *Target) (State, error) {
			d, err := diff(ctx, t)
			var s []string
			for _, o := range d {
				s = append(s, o[0]+"="+o[1])
			}
			return doneIf(len(d) == 0, "set %s", strings.Join(s, " ")), err
		},
		Apply: func(ctx context.Context, t *Target) error {
			d, err := diff(ctx, t)
			if err != nil {
				return err
			}
			for _, o := range d {
				if _, err := t.Sh(ctx, fmt.Sprintf("gluster --mode=script volume set %s %s %s", q(t.Inv().Storage.Volume), o[0], o[1])); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func volumeStartStep() Step {
	return Step{
		Name: "gluster volume started",
		Check: func(ctx context.Context, t *Target) (State, error) {
			info, err := volumeInfo(ctx, t)
			return doneIf(strings.Contains(info, "\nStatus: Started"), "start volume %s", t.Inv().Storage.Volume), err
		},
		Apply: func(ctx context.Context, t *Target) error {
			_, err := t.Sh(ctx, "gluster --mode=script volume start "+q(t.Inv().Storage.Volume))
			return err
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
			return shState(ctx, t, fmt.Sprintf("if ! grep -qxF %s /etc/fstab; then echo 'add %s to /etc/fstab'; "+
				"elif ! findmnt -n -t fuse.glusterfs %s >/dev/null; then echo 'mount %s'; else echo ok; fi", q(line), mnt, q(mnt), mnt))
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
			_, err = t.Sh(ctx, fmt.Sprintf("mkdir -p %[1]s && systemctl daemon-reload && { findmnt -n -t fuse.glusterfs %[1]s >/dev/null || mount %[1]s; }", q(mnt)))
			return err
		},
	}
}

const fstabComment = "# debship: the shared GlusterFS volume"
