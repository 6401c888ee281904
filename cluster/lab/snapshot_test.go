package lab_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/lab"
	"gitlab.com/debship/debship/cluster/lab/labtest"
	"gitlab.com/debship/debship/cluster/status"
)

// snapshotServeBound is how long an applied two-node cluster may take from
// `lab up --snapshot` to serving on every node: boot (seconds), then
// corosync's membership, pacemaker's DC election and the resources' start.
// An apply from scratch takes a minute and more on the same machine.
const snapshotServeBound = 60 * time.Second

// TestSnapshot: a snapshot brings back what the nodes' disks held when it
// was saved, on the root file systems and on the GlusterFS volume, with
// the same host keys, and the cluster serves again within the bound.
func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	l := labtest.Applied(t, 2, labtest.Release(t))
	knownHosts := readFile(t, l.KnownHostsPath())
	mustSSH(t, l, "node1", "echo before | sudo tee /root/marker >/dev/null")
	mustSSH(t, l, "node2", "echo shared | sudo tee /srv/shared/marker >/dev/null")

	s, err := l.SaveSnapshot(ctx, "t-roundtrip", true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "t-roundtrip" || len(s.Nodes) != 2 || s.Release != labtest.Release(t).Suite {
		t.Errorf("saved %+v", s)
	}
	if _, err := l.SaveSnapshot(ctx, "t-roundtrip", false); err == nil ||
		!strings.Contains(err.Error(), "snapshot t-roundtrip exists; remove it with: debship lab snapshot rm t-roundtrip") {
		t.Errorf("a second save of the same name: %v", err)
	}
	// The frozen nodes run on: the cluster still serves.
	inv, _ := labtest.Inventory(t, l)
	labtest.WaitServing(t, inv, 30*time.Second)
	mustSSH(t, l, "node1", "echo after | sudo tee /root/after >/dev/null; sudo rm /srv/shared/marker")

	start := time.Now()
	l, err = lab.Up(ctx, lab.Options{Dir: labtest.Dir, Snapshot: "t-roundtrip"})
	if err != nil {
		t.Fatal(err)
	}
	booted := time.Since(start)
	inv, _ = labtest.Inventory(t, l)
	labtest.WaitServing(t, inv, snapshotServeBound)
	took := time.Since(start)
	t.Logf("SNAPSHOT: nodes booted from the snapshot in %s, cluster serving after %s", booted.Round(100*time.Millisecond), took.Round(100*time.Millisecond))
	if took > snapshotServeBound {
		t.Errorf("the cluster served %s after lab up --snapshot; the bound is %s", took.Round(100*time.Millisecond), snapshotServeBound)
	}
	if got := readFile(t, l.KnownHostsPath()); got != knownHosts {
		t.Errorf("known_hosts changed by the restore:\n%s\nwas:\n%s", got, knownHosts)
	}
	// mustSSH checks host keys strictly against that known_hosts.
	if got := mustSSH(t, l, "node1", "sudo cat /root/marker; sudo ls /root"); got != "before\nmarker" {
		t.Errorf("node1's /root after the restore: %q, want only the marker written before the save", got)
	}
	if got := mustSSH(t, l, "node1", "cat /srv/shared/marker"); got != "shared" {
		t.Errorf("the shared volume after the restore: %q, want the file written before the save", got)
	}

	watchLogsInOnce(t, l)

	ss, err := lab.ListSnapshots(labtest.Dir)
	if err != nil || !hasSnapshot(ss, "t-roundtrip") {
		t.Fatalf("list: %+v %v", ss, err)
	}
	if err := lab.RemoveSnapshot(ctx, labtest.Dir, "t-roundtrip"); err != nil {
		t.Fatal(err)
	}
	if ss, _ := lab.ListSnapshots(labtest.Dir); hasSnapshot(ss, "t-roundtrip") {
		t.Errorf("t-roundtrip still listed after rm")
	}
}

func hasSnapshot(ss []lab.Snapshot, name string) bool {
	for _, s := range ss {
		if s.Name == name && s.SizeBytes > 0 {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// watchLogsInOnce: watching the cluster's state (cluster status --watch)
// costs one SSH login per node, not one per look: a hardened node refuses
// the 6th new SSH connection within 30 s (ufw limit).
func watchLogsInOnce(t *testing.T, l *lab.Lab) {
	t.Helper()
	inv, _ := labtest.Inventory(t, l)
	// The journal's --since/--until take whole seconds: the looks get
	// whole seconds of their own, without the logins before and after.
	since := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(since))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	looks := 0
	err := status.Watch(ctx, inv, inventory.ConnectOptions{Timeout: 5 * time.Second, Attempts: 1}, 200*time.Millisecond, func(s *status.Status) error {
		if ok, why := s.Healthy(); !ok {
			t.Errorf("look %d: not healthy: %s", looks, strings.Join(why, "; "))
		}
		looks++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Truncate(time.Second)
	time.Sleep(time.Until(until.Add(time.Second)))
	if looks < 3 {
		t.Errorf("%d looks in 4 s, want at least 3", looks)
	}
	for _, n := range l.Nodes {
		cmd := fmt.Sprintf("sudo journalctl -q -o cat --since @%d --until @%d -g '^Accepted publickey' | wc -l", since.Unix(), until.Unix())
		if got := mustSSH(t, l, n.Name, cmd); got != "1" {
			t.Errorf("%s: %s SSH logins during %d looks of status --watch, want 1", n.Name, got, looks)
		}
	}
	t.Logf("status --watch: %d looks, 1 SSH login per node", looks)
}
