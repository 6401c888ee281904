package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/lab"
	"gitlab.com/debship/debship/cluster/lab/labtest"
)

func TestMain(m *testing.M) { labtest.Main(m) }

// sshRun runs a command on a node with the system OpenSSH client, exactly as
// `debship lab ssh` does: lab key, strict host-key checking. (The other
// lab tests run commands as debship does, with labtest.Sh.)
func sshRun(t *testing.T, l *lab.Lab, node, user, command string) (string, error) {
	t.Helper()
	args, err := l.SSHArgs(node, user, []string{command})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustSSH(t *testing.T, l *lab.Lab, node, command string) string {
	t.Helper()
	out, err := sshRun(t, l, node, lab.AdminUser, command)
	if err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", node, command, err, out)
	}
	return out
}

// reachable reports whether the node's sshd accepts a TCP connection.
func reachable(l *lab.Lab, node string, timeout time.Duration) bool {
	n, _ := l.Node(node)
	c, err := net.DialTimeout("tcp", net.JoinHostPort(n.Address.String(), "22"), timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func nodeStatus(t *testing.T, l *lab.Lab, node string) lab.NodeStatus {
	t.Helper()
	for _, n := range l.Status(context.Background()).Nodes {
		if n.Name == node {
			return n
		}
	}
	t.Fatalf("no %s in status", node)
	return lab.NodeStatus{}
}

// TestLab walks through the acceptance list in order; each step
// needs the previous one, so the first failure stops it.
func TestLab(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	l := labtest.Get(t, 2)
	t.Logf("lab up (cold build if there was no cache) took %s", time.Since(start).Round(100*time.Millisecond))

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"status", func(t *testing.T) {
			b, err := json.Marshal(l.Status(ctx))
			if err != nil {
				t.Fatal(err)
			}
			var st struct {
				Inventory string
				Nodes     []struct {
					Name, Address, State, Link string
					SSH                        bool
					MemoryBytes                int64 `json:"memory_bytes"`
				}
			}
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
			if len(st.Nodes) != 2 || st.Inventory != l.InventoryPath() {
				t.Fatalf("status: %s", b)
			}
			for i, n := range st.Nodes {
				want := fmt.Sprintf("10.231.0.%d", 11+i)
				if n.Name != fmt.Sprintf("node%d", i+1) || n.Address != want || n.State != "running" ||
					n.Link != "up" || !n.SSH || n.MemoryBytes <= 0 {
					t.Errorf("status of node %d: %+v", i+1, n)
				}
			}
		}},
		{"inventory", func(t *testing.T) {
			inv, err := inventory.Load(l.InventoryPath())
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Nodes) != 2 || inv.FloatingIP.Address != "10.231.0.100/24" || inv.SSH.User != lab.AdminUser ||
				inv.SSH.Key != l.KeyPath() || inv.SSH.KnownHosts != l.KnownHostsPath() || inv.FloatingIP.Interface != lab.NodeNIC {
				t.Errorf("inventory: %+v", inv)
			}
		}},
		{"ssh", func(t *testing.T) {
			for _, n := range l.Nodes {
				if got := mustSSH(t, l, n.Name, "id -un; hostname; sudo -n id -un"); got != "admin\n"+n.Name+"\nroot" {
					t.Errorf("%s: admin, hostname, sudo: %q", n.Name, got)
				}
				if out, err := sshRun(t, l, n.Name, "root", "id -u"); err != nil || out != "0" {
					t.Errorf("%s: root by key: %v %s", n.Name, err, out)
				}
				// The nodes have no route out: a route lookup, no packet sent.
				if out, err := sshRun(t, l, n.Name, lab.AdminUser, "ip route get 192.0.2.1"); err == nil ||
					!strings.Contains(out, "unreachable") {
					t.Errorf("%s has a route out: %s", n.Name, out)
				}
			}
		}},
		{"strict host keys", func(t *testing.T) {
			// The same ssh with a known_hosts that lacks the node must refuse.
			empty := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(empty, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			args, _ := l.SSHArgs("node1", "", []string{"true"})
			for i, a := range args {
				if strings.HasPrefix(a, "UserKnownHostsFile=") {
					args[i] = "UserKnownHostsFile=" + empty
				}
			}
			out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Host key verification failed") {
				t.Errorf("unknown host key accepted: %v %s", err, out)
			}
		}},
		{"system running", func(t *testing.T) {
			for _, n := range l.Nodes {
				state, _ := sshRun(t, l, n.Name, lab.AdminUser, "systemctl is-system-running --wait")
				switch state {
				case "running":
				case "degraded":
					failed, _ := sshRun(t, l, n.Name, lab.AdminUser, "systemctl --failed --no-legend --plain")
					t.Logf("%s is degraded; failed units:\n%s", n.Name, failed)
				default:
					t.Errorf("%s: systemctl is-system-running: %q", n.Name, state)
				}
				if out, _ := sshRun(t, l, n.Name, lab.AdminUser,
					"systemctl is-enabled corosync pacemaker pcsd glusterd fail2ban"); strings.Contains(out, "enabled") {
					t.Errorf("%s: cluster daemons must be installed but not enabled:\n%s", n.Name, out)
				}
			}
		}},
		{"up again", func(t *testing.T) {
			before := nodeStatus(t, l, "node1").PID
			t0 := time.Now()
			l = labtest.Get(t, 2)
			if after := nodeStatus(t, l, "node1").PID; after != before || time.Since(t0) > 5*time.Second {
				t.Errorf("second up on a running lab rebooted it: PID %d -> %d in %s", before, after, time.Since(t0))
			}
		}},
		{"crash", func(t *testing.T) {
			// What the node wrote before the crash must be there after it.
			mustSSH(t, l, "node1", "echo '10.231.0.12 node2' | sudo tee -a /etc/hosts >/dev/null")
			t0 := time.Now()
			if err := l.Crash(ctx, "node1"); err != nil {
				t.Fatal(err)
			}
			for reachable(l, "node1", 300*time.Millisecond) {
				if time.Since(t0) > 2*time.Second {
					t.Fatal("node1 still reachable 2 s after the crash")
				}
			}
			t.Logf("node1 unreachable %s after the crash", time.Since(t0).Round(10*time.Millisecond))
			if st := nodeStatus(t, l, "node1"); st.State != "stopped" || st.Link != "down" {
				t.Errorf("status after crash: %+v", st)
			}
			if got := mustSSH(t, l, "node2", "hostname"); got != "node2" {
				t.Errorf("node2 after node1's crash: %q", got)
			}
		}},
		{"start", func(t *testing.T) {
			if err := l.Start(ctx, "node1"); err != nil {
				t.Fatal(err)
			}
			if got := mustSSH(t, l, "node1", "hostname; grep -c node2 /etc/hosts"); got != "node1\n1" {
				t.Errorf("node1 after start (hostname, its disk kept): %q", got)
			}
		}},
		{"partition", func(t *testing.T) {
			if err := l.Partition(ctx, "node1"); err != nil {
				t.Fatal(err)
			}
			if out, err := l.Exec(ctx, "node1", "ping", "-c1", "-W1", "10.231.0.12"); err == nil {
				t.Errorf("partitioned node1 reaches node2:\n%s", out)
			}
			if out, err := l.Exec(ctx, "node1", "systemctl", "is-system-running"); err != nil &&
				!bytes.Contains(out, []byte("degraded")) {
				t.Errorf("partitioned node1 is not running: %v %s", err, out)
			}
			if st := nodeStatus(t, l, "node1"); st.State != "running" || st.Link != "down" {
				t.Errorf("status of partitioned node1: %+v", st)
			}
			if got := mustSSH(t, l, "node2", "hostname"); got != "node2" {
				t.Errorf("node2 during the partition: %q", got)
			}
		}},
		{"heal", func(t *testing.T) {
			if err := l.Heal(ctx, "node1"); err != nil {
				t.Fatal(err)
			}
			var out []byte
			var err error
			for i := 0; i < 10; i++ {
				if out, err = l.Exec(ctx, "node1", "ping", "-c1", "-W1", "10.231.0.12"); err == nil {
					break
				}
			}
			if err != nil {
				t.Errorf("node1 cannot reach node2 after heal: %v\n%s", err, out)
			}
			mustSSH(t, l, "node1", "true")
		}},
		{"leftovers of a killed run", func(t *testing.T) {
			// A run killed mid-way leaves nodes but no lab.json: the next
			// up must clean them up, not boot a second set beside them.
			if err := os.Remove(filepath.Join(l.Dir, "lab.json")); err != nil {
				t.Fatal(err)
			}
			l = labtest.Get(t, 2)
			if n := len(nspawnProcesses(t)); n != 2 {
				t.Errorf("%d nspawn processes after up over leftovers, want 2", n)
			}
			mustSSH(t, l, "node1", "true")
		}},
		{"down leaves nothing", func(t *testing.T) {
			t0 := time.Now()
			if err := l.Down(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("lab down took %s", time.Since(t0).Round(100*time.Millisecond))
			assertNothingLeft(t, l.Dir)
			if _, err := lab.Open(l.Dir); err == nil {
				t.Error("lab state survives down")
			}
		}},
		{"warm up", func(t *testing.T) {
			t0 := time.Now()
			l = labtest.Get(t, 2)
			took := time.Since(t0)
			t.Logf("warm lab up took %s", took.Round(100*time.Millisecond))
			if took > 10*time.Second {
				t.Errorf("warm up took %s, want ≤ 10 s", took)
			}
			mustSSH(t, l, "node2", "true")
		}},
		{"three nodes", func(t *testing.T) {
			l = labtest.Get(t, 3)
			n3, err := l.Node("node3")
			if err != nil || n3.Role != inventory.RoleTiebreaker || n3.Address.String() != "10.231.0.13" {
				t.Fatalf("node3: %+v %v", n3, err)
			}
			if got := mustSSH(t, l, "node3", "hostname"); got != "node3" {
				t.Errorf("node3: %q", got)
			}
			inv, err := inventory.Load(l.InventoryPath())
			if err != nil {
				t.Fatal(err)
			}
			if tb, ok := inv.Tiebreaker(); !ok || tb.Name != "node3" {
				t.Errorf("inventory tie-breaker: %+v", inv.Nodes)
			}
		}},
		{"down again", func(t *testing.T) {
			if err := l.Down(ctx); err != nil {
				t.Fatal(err)
			}
			assertNothingLeft(t, l.Dir)
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			t.FailNow()
		}
	}
}

// nspawnProcesses lists live (non-zombie) systemd-nspawn processes booting a
// root below the lab directory.
func nspawnProcesses(t *testing.T) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || !bytes.HasPrefix(cmd, []byte("systemd-nspawn")) ||
			!bytes.Contains(cmd, []byte("--directory="+labtest.Dir+"/")) {
			continue
		}
		if stat, _ := os.ReadFile(filepath.Join(p, "stat")); bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// assertNothingLeft checks ip netns, ip link, /proc/mounts, cgroups and the
// process table for anything of the lab.
func assertNothingLeft(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil || bytes.Contains(out, []byte("debship-lab")) {
		t.Errorf("ip netns: %v\n%s", err, out)
	}
	if out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput(); err != nil || bytes.Contains(out, []byte("debship-")) {
		t.Errorf("ip link: %v\n%s", err, out)
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (f[0] == "debship-lab" || strings.HasPrefix(f[1], dir+"/") || strings.HasPrefix(f[1], "/run/netns/debship-lab")) {
			t.Errorf("mount left: %s", line)
		}
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/debship-lab-*"); len(m) > 0 {
		t.Errorf("cgroups left: %v", m)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/debship-lab-*"); len(m) > 0 {
		t.Errorf("cgroups left: %v", m)
	}
	if p := nspawnProcesses(t); len(p) > 0 {
		t.Errorf("nspawn processes left: %v", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes")); err == nil {
		t.Errorf("node layers left in %s", dir)
	}
}
