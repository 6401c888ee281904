package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testenv"
)

func TestBaseKeyFollowsPackageList(t *testing.T) {
	trixie, _ := debian.BySuite("trixie")
	bookworm, _ := debian.BySuite("bookworm")
	k1, err := baseKey(trixie)
	if err != nil {
		t.Fatal(err)
	}
	saved := Packages
	defer func() { Packages = saved }()
	Packages = append(append([]string(nil), saved...), "htop-extra")
	k2, _ := baseKey(trixie)
	Packages = append([]string{saved[len(saved)-1]}, saved[:len(saved)-1]...) // order does not matter
	k3, _ := baseKey(trixie)
	k4, _ := baseKey(bookworm)
	if k1 == k2 || k1 != k3 || k1 == k4 {
		t.Errorf("keys: %s %s %s %s", k1, k2, k3, k4)
	}
	Packages = saved
	for _, tt := range []struct{ suite, key, fence string }{{"trixie", k1, "fence-agents-dummy"}, {"bookworm", k4, "fence-agents"}} {
		b, err := newBase("/var/cache/x", tt.suite)
		if err != nil {
			t.Fatal(err)
		}
		if b.Dir != "/var/cache/x/"+tt.suite+"/base-"+tt.key || b.Debs != "/var/cache/x/"+tt.suite+"/debs" || b.Suite != tt.suite {
			t.Errorf("base %+v", b.Base)
		}
		if p := packages(b.release); p[len(p)-1] != tt.fence {
			t.Errorf("%s: fence agent package %s, want %s", tt.suite, p[len(p)-1], tt.fence)
		}
	}
	if _, err := newBase("/var/cache/x", "sid"); err == nil || !strings.Contains(err.Error(), "trixie, bookworm") {
		t.Errorf("sid: %v", err)
	}
}

func TestIssuePackages(t *testing.T) {
	have := map[string]bool{}
	for _, p := range Packages {
		have[p] = true
	}
	for _, p := range strings.Fields(`openssh-server corosync pacemaker pcs crmsh resource-agents
		corosync-qnetd corosync-qdevice glusterfs-server glusterfs-client fuse3 wireguard-tools tinc ufw
		fail2ban rkhunter unattended-upgrades python3 python3-venv curl sudo`) {
		if !have[p] {
			t.Errorf("package %s missing from the base root", p)
		}
	}
}

func TestOptions(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil || o.Dir != DefaultDir || o.CacheDir != DefaultCacheDir || o.Nodes != 2 || o.Subnet != DefaultSubnet || o.Release != "trixie" {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	if _, err := (Options{Release: "buster"}).withDefaults(); err == nil || err.Error() != `the lab runs trixie or bookworm, not "buster"` {
		t.Errorf("buster: %v", err)
	}
	if _, err := (Options{Nodes: 4}).withDefaults(); err == nil {
		t.Error("4 nodes accepted")
	}
	if _, err := (Options{Subnet: netip.MustParsePrefix("10.0.0.0/16")}).withDefaults(); err == nil {
		t.Error("/16 accepted")
	}
	o, _ = Options{Subnet: netip.MustParsePrefix("192.168.77.5/24")}.withDefaults()
	if o.Subnet.String() != "192.168.77.0/24" {
		t.Errorf("subnet not masked: %s", o.Subnet)
	}
}

func TestLabLayout(t *testing.T) {
	o, _ := Options{Dir: "/srv/lab", Nodes: 3}.withDefaults()
	l := newLab(o, "/var/cache/debship/lab/base-x")
	want := []Node{
		{Name: "node1", Address: netip.MustParseAddr("10.231.0.11")},
		{Name: "node2", Address: netip.MustParseAddr("10.231.0.12")},
		{Name: "node3", Address: netip.MustParseAddr("10.231.0.13"), Role: inventory.RoleTiebreaker},
	}
	if !reflect.DeepEqual(l.Nodes, want) {
		t.Errorf("nodes: %+v", l.Nodes)
	}
	if l.HostAddress().String() != "10.231.0.1" || l.FloatingIP().String() != "10.231.0.100/24" {
		t.Errorf("host %s, floating %s", l.HostAddress(), l.FloatingIP())
	}
	if _, err := l.Node("node4"); err == nil || err.Error() != `no node "node4" in the lab (nodes: node1, node2, node3)` {
		t.Errorf("unknown node: %v", err)
	}
	if got := nodeMAC(netip.MustParseAddr("10.231.0.11")); got != "02:d5:0a:e7:00:0b" {
		t.Errorf("mac %s", got)
	}
	for _, n := range l.Nodes {
		if len(vethName(n.Name)) > 15 {
			t.Errorf("interface name %s too long", vethName(n.Name))
		}
	}
	args, err := l.SSHArgs("node2", "", []string{"ls", "-l"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	if !strings.Contains(got, "-i /srv/lab/id_ed25519") || !strings.Contains(got, "UserKnownHostsFile=/srv/lab/known_hosts") ||
		!strings.Contains(got, "StrictHostKeyChecking=yes") || !strings.HasSuffix(got, "-- admin@10.231.0.12 ls -l") {
		t.Errorf("ssh args: %s", got)
	}
}

func TestLabInventory(t *testing.T) {
	dir := t.TempDir()
	o, _ := Options{Dir: dir}.withDefaults()
	l := newLab(o, "")
	if err := l.writeInventory(); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(l.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	if inv.SSH.Key != l.KeyPath() || inv.SSH.KnownHosts != l.KnownHostsPath() || len(inv.Members()) != 2 ||
		inv.FloatingIP.Address != "10.231.0.100/24" || inv.FloatingIP.Interface != "eth0" {
		t.Errorf("inventory: %+v", inv)
	}
	b, _ := os.ReadFile(l.InventoryPath())
	if strings.Contains(string(b), dir) {
		t.Errorf("inventory paths not relative to its directory:\n%s", b)
	}
}

func TestKeysAreStable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k", "id")
	a, err := ensureKey(p, "c")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ensureKey(p, "c")
	if err != nil {
		t.Fatal(err)
	}
	if string(a.PublicKey().Marshal()) != string(b.PublicKey().Marshal()) {
		t.Error("key changed")
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v", st.Mode())
	}
	line := knownHostsLine([]string{"node1", "10.231.0.11"}, a.PublicKey())
	if !strings.HasPrefix(line, "node1,10.231.0.11 ssh-ed25519 ") {
		t.Errorf("known_hosts line %q", line)
	}
}

// After `sudo debship lab up` the invoking user owns the lab's key, its
// known_hosts and inventory: the walkthrough's `debship lab ssh` and
// `debship cluster plan` run without sudo.
func TestHandOverToSudoUser(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "chown needs root")
	}
	l := &Lab{Dir: t.TempDir()}
	files := []string{l.KeyPath(), l.KeyPath() + ".pub", l.KnownHostsPath(), l.InventoryPath()}
	for _, p := range files {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SUDO_UID", "")
	t.Setenv("SUDO_GID", "")
	if err := l.handOver(); err != nil {
		t.Fatal(err)
	}
	for _, p := range files {
		if st, _ := os.Stat(p); st.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Fatalf("%s changed owner without sudo", p)
		}
	}
	t.Setenv("SUDO_UID", "65534")
	t.Setenv("SUDO_GID", "65534")
	if err := l.handOver(); err != nil {
		t.Fatal(err)
	}
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := st.Sys().(*syscall.Stat_t); s.Uid != 65534 || s.Gid != 65534 || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: owner %d:%d mode %o, want 65534:65534 0600", p, s.Uid, s.Gid, st.Mode().Perm())
		}
	}
}
