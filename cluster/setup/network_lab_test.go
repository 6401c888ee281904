package setup_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/lab"
	"gitlab.com/debship/debship/cluster/lab/labtest"
	"gitlab.com/debship/debship/cluster/setup"
	"gitlab.com/debship/debship/internal/syncbuf"
	"gitlab.com/debship/debship/internal/testenv"
	"gitlab.com/debship/debship/internal/testlog"
)

// crashFailoverBound is the bound TestClusterThreeNodes puts on a failover
// after a crash without a tunnel; the tunnel must not make it slower.
const crashFailoverBound = 15 * time.Second

// failoverSlack is how much slower than the measured failover without a
// tunnel one with it may be (one failover is no average).
const failoverSlack = 3 * time.Second

// TestPrivateNetworkLab is issue 13's acceptance of the private network, once
// per kind on a fresh two-node lab: corosync and gluster talk over the
// tunnel and nothing else crosses the lab bridge between the nodes in clear;
// failover, reboots and a second apply behave as without the tunnel; each
// node's private key stays on it.
func TestPrivateNetworkLab(t *testing.T) {
	testenv.NeedCommand(t, "tcpdump")
	deb := buildClusterDeb(t)
	// "none" first: its crash failover is the baseline for the others.
	var baseline time.Duration
	kinds := []string{inventory.NetworkNone, inventory.NetworkWireGuard, inventory.NetworkTinc}
	if k := os.Getenv("DEBSHIP_NETWORK_KINDS"); k != "" {
		kinds = strings.Split(k, ",")
	}
	for _, kind := range kinds {
		if !t.Run(kind, func(t *testing.T) { privateNetwork(t, deb, kind, &baseline) }) {
			t.FailNow()
		}
	}
}

func privateNetwork(t *testing.T, deb, kind string, baseline *time.Duration) {
	tunnel := kind != inventory.NetworkNone
	ctx := context.Background()
	// Without a tunnel the apply is TestClusterTwoNodes's: the baseline
	// starts from the applied cluster's snapshot.
	var l *lab.Lab
	if tunnel {
		l = labtest.Fresh(t, 2)
	} else {
		l = labtest.Applied(t, 2, labtest.Release(t))
	}
	inv, invPath := labtest.Inventory(t, l)
	inv.Network.Type = kind
	if err := inv.Write(invPath); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	var output syncbuf.Buffer // debship's output, from concurrent node goroutines
	applyLogged := func(t *testing.T, o setup.Options) *setup.Report {
		w := io.MultiWriter(&output, testlog.Writer(t))
		o.Progress = setup.TextProgress(w, w)
		return apply(t, inv, o)
	}
	members := inv.Members()

	steps := []struct {
		name       string
		tunnelOnly bool
		f          func(t *testing.T)
	}{
		{"apply", true, func(t *testing.T) {
			start := time.Now()
			rep := applyLogged(t, setup.Options{Package: deb})
			t.Logf("TIMING %s: first apply: %d changes in %s", kind, len(rep.Changes), time.Since(start).Round(100*time.Millisecond))
			start = time.Now()
			rep = applyLogged(t, setup.Options{})
			t.Logf("TIMING %s: second apply: %d changes in %s", kind, len(rep.Changes), time.Since(start).Round(100*time.Millisecond))
			if len(rep.Changes) != 0 {
				t.Errorf("second apply changed: %+v", rep.Changes)
			}
			labtest.WaitHealthy(t, inv, 2*time.Minute)
		}},
		{"corosync and gluster use the tunnel", true, func(t *testing.T) { tunnelAddresses(t, inv) }},
		{"nothing in clear on the bridge", true, func(t *testing.T) { captureBridge(t, l, inv) }},
		{"crash failover and reboot", false, func(t *testing.T) {
			h := holderOn(t, inv, members[0].Name)
			o := other(inv, h)
			if err := l.Crash(ctx, h); err != nil {
				t.Fatal(err)
			}
			got, took := waitHolder(t, inv, h, 60*time.Second)
			t.Logf("TIMING %s: FAILOVER: %s crashed, %s answers on the floating IP after %s", kind, h, got, took.Round(10*time.Millisecond))
			if got != o || took > crashFailoverBound {
				t.Errorf("failover to %s took %s; without a tunnel it takes at most %s", got, took, crashFailoverBound)
			}
			switch {
			case !tunnel:
				*baseline = took
			case *baseline > 0 && took > *baseline+failoverSlack:
				t.Errorf("failover took %s with %s, %s without a tunnel", took, kind, *baseline)
			}
			start := time.Now()
			if err := l.Start(ctx, h); err != nil {
				t.Fatal(err)
			}
			// No apply in between: the units bring everything back.
			waitTunnel(t, inv, h, 2*time.Minute)
			t.Logf("TIMING %s: %s's tunnel and corosync link back %s after its start", kind, h, time.Since(start).Round(100*time.Millisecond))
			labtest.WaitHealthy(t, inv, 2*time.Minute)
			for _, n := range members {
				waitTunnel(t, inv, n.Name, time.Minute)
			}
			if p := plan(t, inv); len(p.Changes) != 0 {
				t.Errorf("after the reboot the plan lists changes: %+v", p.Changes)
			}
		}},
		{"private keys stay on their node", true, func(t *testing.T) { privateKeysStay(t, l, inv, invPath, output.String()) }},
	}
	// What went wrong is on the nodes: keep it in the test's output.
	t.Cleanup(func() {
		if !t.Failed() || !tunnel {
			return
		}
		for _, n := range members {
			out, err := labtest.ShErr(inv, n.Name, "ip -o addr; corosync-cfgtool -s; "+
				"journalctl -b --no-pager -o short-precise -n 80 -u tinc@debship -u wg-quick@wg0 -u corosync 2>&1")
			t.Logf("%s after the failure (%v):\n%s", n.Name, err, out)
		}
	})
	for _, s := range steps {
		if s.tunnelOnly && !tunnel {
			continue
		}
		if !t.Run(s.name, s.f) {
			t.FailNow()
		}
	}
}

// holderOn makes node the floating IP's holder. Crash failovers in the lab
// differ by which node crashes (3 s for one, 10 s for the other in the same
// run), so every kind crashes the same node.
func holderOn(t *testing.T, inv *inventory.Inventory, node string) string {
	t.Helper()
	h, _ := waitHolder(t, inv, "", 30*time.Second)
	if h == node {
		return h
	}
	labtest.Sh(t, inv, h, "pcs node standby "+h)
	got, _ := waitHolder(t, inv, h, 60*time.Second)
	labtest.Sh(t, inv, got, "pcs node unstandby "+h)
	labtest.WaitHealthy(t, inv, time.Minute)
	if got != node {
		t.Fatalf("the floating IP moved to %s, not %s", got, node)
	}
	return got
}

// tunnelAddresses: corosync's links and gluster's peers and bricks are the
// tunnel addresses, never the nodes' lab addresses.
func tunnelAddresses(t *testing.T, inv *inventory.Inventory) {
	members := inv.Members()
	var want []string
	for _, n := range members {
		want = append(want, inv.TunnelAddress(n).String())
	}
	ring := regexp.MustCompile(`ring0_addr \(str\) = (\S+)`)
	local := regexp.MustCompile(`(?m)^\s*addr\s*=\s*(\S+)`)
	pair := regexp.MustCompile(`\(([0-9.]+)->([0-9.]+)\)`)
	connected := regexp.MustCompile(`nodeid:?\s+(\d+):\s+connected`)
	for _, n := range members {
		self := inv.TunnelAddress(n).String()
		cmap := labtest.Sh(t, inv, n.Name, "corosync-cmapctl -b nodelist.node")
		var got []string
		for _, m := range ring.FindAllStringSubmatch(cmap, -1) {
			got = append(got, m[1])
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: corosync's nodelist has %v, want the tunnel addresses %v:\n%s", n.Name, got, want, cmap)
		}
		cfg := labtest.Sh(t, inv, n.Name, "corosync-cfgtool -s")
		t.Logf("%s: corosync-cfgtool -s:\n%s", n.Name, cfg)
		if m := local.FindStringSubmatch(cfg); m == nil || m[1] != self {
			t.Errorf("%s: corosync's link is not on the tunnel address %s:\n%s", n.Name, self, cfg)
		}
		if c := connected.FindAllStringSubmatch(cfg, -1); len(c) != len(members)-1 {
			t.Errorf("%s: %d of %d peers connected:\n%s", n.Name, len(c), len(members)-1, cfg)
		}
		// corosync ≥ 3.1 also names both ends of each link.
		if links, err := labtest.ShErr(inv, n.Name, "corosync-cfgtool -n"); err == nil {
			for _, m := range pair.FindAllStringSubmatch(links, -1) {
				if m[1] != self || !slices.Contains(want, m[2]) {
					t.Errorf("%s: corosync link %s->%s is not between tunnel addresses", n.Name, m[1], m[2])
				}
			}
		}
		// A tunnel packet must fit in one underlay datagram with the
		// tunnel's overhead (corosync's large messages were lost otherwise).
		links := labtest.Sh(t, inv, n.Name, "ip -o link show dev eth0; ip -o link show dev wg0 2>/dev/null || ip -o link show dev tinc-debship")
		if m := regexp.MustCompile(` mtu (\d+) `).FindAllStringSubmatch(links, -1); len(m) != 2 || atoi(m[1][1])+80 > atoi(m[0][1]) {
			t.Errorf("%s: the tunnel's MTU is not at least 80 below the underlay's:\n%s", n.Name, links)
		}
		peers := labtest.Sh(t, inv, n.Name, "gluster peer status")
		pool := labtest.Sh(t, inv, n.Name, "gluster pool list")
		t.Logf("%s: gluster pool list:\n%s", n.Name, pool)
		for _, p := range members {
			if p.Name == n.Name {
				continue
			}
			a := inv.TunnelAddress(p).String()
			if !strings.Contains(peers, "Hostname: "+a+"\n") || !strings.Contains(peers, "(Connected)") {
				t.Errorf("%s: gluster's peer %s is not %s, connected:\n%s", n.Name, p.Name, a, peers)
			}
			if !regexp.MustCompile(`(?m)\s` + regexp.QuoteMeta(a) + `\s+Connected\s*$`).MatchString(pool) {
				t.Errorf("%s: gluster pool list lacks %s connected:\n%s", n.Name, a, pool)
			}
		}
		for _, p := range inv.Nodes {
			if strings.Contains(peers+pool, p.Address) {
				t.Errorf("%s: gluster knows %s by its lab address %s:\n%s\n%s", n.Name, p.Name, p.Address, peers, pool)
			}
		}
	}
	info := labtest.Sh(t, inv, members[0].Name, "gluster volume info shared")
	for _, a := range want {
		if !strings.Contains(info, ": "+a+":"+inv.Storage.Brick+"\n") {
			t.Errorf("no brick on %s:\n%s", a, info)
		}
	}
}

// captureBridge records the lab bridge during a gluster write and read and a
// move of the floating IP, and sorts what went between node addresses.
func captureBridge(t *testing.T, l *lab.Lab, inv *inventory.Inventory) {
	members := inv.Members()
	nodeAddr := map[string]bool{inv.FloatingPrefix().Addr().String(): true}
	for _, n := range inv.Nodes {
		nodeAddr[n.Address] = true
	}
	pcap := filepath.Join(t.TempDir(), "bridge.pcap")
	// The host's own packets (SSH, HTTP to the floating IP) are not between
	// nodes; ARP is not IP.
	filter := "not arp and not host " + l.HostAddress().String()
	cmd := osexec.Command("tcpdump", "-i", lab.BridgeName, "-nn", "-s", "128", "-U", "-w", pcap, filter)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		}
	}
	defer stop()
	ready := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stderr)
		var all []string
		for s.Scan() {
			all = append(all, s.Text())
			if strings.Contains(s.Text(), "listening on") { // "tcpdump: listening on debship-lab, …"
				ready <- ""
			}
		}
		ready <- strings.Join(all, "\n")
	}()
	select {
	case msg := <-ready:
		if msg != "" {
			t.Fatalf("tcpdump: %s", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump is not listening after 10 s")
	}

	writer, reader := members[0].Name, members[1].Name
	const mb = 8
	sum := labtest.Sh(t, inv, writer, fmt.Sprintf("dd if=/dev/urandom of=/srv/shared/net-test bs=1M count=%d conv=fsync status=none && sha256sum < /srv/shared/net-test", mb))
	if got := labtest.Sh(t, inv, reader, "echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; sha256sum < /srv/shared/net-test"); got != sum {
		t.Errorf("%s reads %q, %s wrote %q", reader, got, writer, sum)
	}
	h, _ := waitHolder(t, inv, "", 30*time.Second)
	labtest.Sh(t, inv, h, "pcs node standby "+h)
	got, took := waitHolder(t, inv, h, 60*time.Second)
	t.Logf("standby of %s: %s answers on the floating IP after %s", h, got, took.Round(10*time.Millisecond))
	labtest.Sh(t, inv, got, "pcs node unstandby "+h)
	labtest.WaitHealthy(t, inv, time.Minute)
	stop()

	out, err := osexec.Command("tcpdump", "-r", pcap, "-nn", "-q", "-t").Output()
	if err != nil {
		t.Fatalf("tcpdump -r: %v", err)
	}
	c := classify(string(out), inv, nodeAddr)
	t.Logf("TIMING %s: capture: %d tunnel packets (%d kB) between the nodes, %d others between the nodes, %d not between nodes",
		inv.Network.Type, c.tunnel, c.tunnelBytes/1000, len(c.others), c.skipped)
	if len(c.others) > 0 {
		t.Errorf("%d packets between the nodes outside the tunnel, e.g.:\n%s", len(c.others), strings.Join(c.others[:min(len(c.others), 20)], "\n"))
	}
	// The file crosses to the other brick at least once. The veths'
	// segmentation offload hands tcpdump packets of up to 64 kB, so the
	// bytes are the measure and the packet count only a floor.
	if c.tunnel < 500 || c.tunnelBytes < mb<<20 {
		t.Errorf("only %d tunnel packets, %d bytes: did the write cross the bridge?", c.tunnel, c.tunnelBytes)
	}
}

// capture is a recording sorted by classify.
type capture struct {
	tunnel, tunnelBytes int
	others              []string
	skipped             int
}

// classify sorts tcpdump -q -t -nn lines: packets between two node addresses
// on the tunnel's port (WireGuard: UDP; tinc: UDP for data and TCP for its
// meta connections, both on its port) or not.
func classify(dump string, inv *inventory.Inventory, nodeAddr map[string]bool) (c capture) {
	port := strconv.Itoa(inv.TunnelPort())
	for _, line := range strings.Split(strings.TrimSpace(dump), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "IP" || f[2] != ">" {
			c.skipped++ // IPv6 link-local chatter, never between node addresses
			continue
		}
		src, sport := splitAddrPort(f[1])
		dst, dport := splitAddrPort(strings.TrimSuffix(f[3], ":"))
		if !nodeAddr[src] || !nodeAddr[dst] {
			c.skipped++
			continue
		}
		proto := strings.ToLower(strings.TrimSuffix(f[4], ","))
		ok := proto == "udp" || (proto == "tcp" && inv.Network.Type == inventory.NetworkTinc)
		if ok && (sport == port || dport == port) {
			c.tunnel++
			// "UDP, length 148", "tcp 1448": the payload's length is last.
			n, _ := strconv.Atoi(f[len(f)-1])
			c.tunnelBytes += n
		} else {
			c.others = append(c.others, line)
		}
	}
	return c
}

// splitAddrPort splits tcpdump's "10.231.0.11.51820" (no port for ICMP).
func splitAddrPort(s string) (addr, port string) {
	p := strings.Split(s, ".")
	if len(p) == 5 {
		return strings.Join(p[:4], "."), p[4]
	}
	return s, ""
}

// waitTunnel waits until the node's tunnel is up with every peer and its
// corosync link to every peer is connected.
func waitTunnel(t *testing.T, inv *inventory.Inventory, node string, limit time.Duration) {
	t.Helper()
	n, _ := inv.Node(node)
	self := inv.TunnelAddress(n).String()
	var peers []string
	for _, p := range inv.Members() {
		if p.Name != node {
			peers = append(peers, inv.TunnelAddress(p).String())
		}
	}
	check := "true"
	switch inv.Network.Type {
	case inventory.NetworkWireGuard:
		// Every peer has a handshake; wg-quick ran wireguard-go where the
		// kernel has no module.
		check = "systemctl is-active -q wg-quick@wg0 && ip -4 -o addr show dev wg0 | grep -qF ' " + self + "/' && " +
			"test \"$(wg show wg0 latest-handshakes | awk '$2 > 0' | wc -l)\" = " + strconv.Itoa(len(peers)) + " && " +
			"{ test -e /sys/module/wireguard || pgrep -x wireguard-go >/dev/null; }"
	case inventory.NetworkTinc:
		// A meta connection (TCP) is up and packets reach each peer.
		check = "systemctl is-active -q tinc@debship && ip -4 -o addr show dev tinc-debship | grep -qF ' " + self + "/' && " +
			"test -n \"$(ss -Htn state established '( sport = :" + strconv.Itoa(inv.TunnelPort()) + " or dport = :" + strconv.Itoa(inv.TunnelPort()) + " )')\""
		for _, p := range peers {
			check += " && ping -c1 -W1 -q " + p + " >/dev/null"
		}
	}
	check += " && test \"$(corosync-cfgtool -s | grep -cE ':[[:space:]]+connected')\" = " + strconv.Itoa(len(peers))
	start := time.Now()
	for {
		_, err := labtest.ShErr(inv, node, check)
		if err == nil {
			return
		}
		if time.Since(start) > limit {
			diag, _ := labtest.ShErr(inv, node, "ip -br addr; wg show 2>/dev/null; systemctl --no-pager status wg-quick@wg0 tinc@debship 2>&1 | tail -30; corosync-cfgtool -s")
			t.Fatalf("%s: tunnel not back within %s (%v):\n%s", node, limit, err, diag)
		}
		time.Sleep(time.Second)
	}
}

// privateKeysStay: each node's private key is in its key file and nowhere
// else on it, nor on the other node, in debship's output or in the
// inventory's and lab's directories.
func privateKeysStay(t *testing.T, l *lab.Lab, inv *inventory.Inventory, invPath, output string) {
	keyFile := "/etc/wireguard/private.key"
	if inv.Network.Type == inventory.NetworkTinc {
		keyFile = "/etc/tinc/debship/rsa_key.priv"
	}
	members := inv.Members()
	needles := map[string][][]byte{}
	for _, n := range members {
		if mode := labtest.Sh(t, inv, n.Name, "stat -c '%a %U' "+keyFile); mode != "600 root" {
			t.Errorf("%s: %s is %s, want 600 root", n.Name, keyFile, mode)
		}
		key := labtest.Sh(t, inv, n.Name, "cat "+keyFile)
		needles[n.Name] = keyNeedles(t, key)
	}
	if a, b := needles[members[0].Name], needles[members[1].Name]; bytes.Equal(a[0], b[0]) {
		t.Fatalf("%s and %s have the same private key", members[0].Name, members[1].Name)
	}
	upper := func(node string) string { return filepath.Join(l.Dir, "nodes", node, "upper") }
	for _, n := range members {
		for _, k := range needles[n.Name] {
			if bytes.Contains([]byte(output), k) {
				t.Errorf("%s's private key is in debship's output", n.Name)
			}
		}
		// The node's own disk: the key file only (the layer holds what the
		// node wrote since it booted from the pristine base).
		if got := filesWith(t, upper(n.Name), needles[n.Name], true); !slices.Equal(got, []string{keyFile}) {
			t.Errorf("%s: its private key is in %v, want only %s", n.Name, got, keyFile)
		}
		for _, o := range members {
			if o.Name == n.Name {
				continue
			}
			if got := filesWith(t, upper(o.Name), needles[n.Name], true); len(got) != 0 {
				t.Errorf("%s's private key is on %s in %v", n.Name, o.Name, got)
			}
		}
		if got := filesWith(t, filepath.Dir(invPath), needles[n.Name], true); len(got) != 0 {
			t.Errorf("%s's private key is in the inventory's directory: %v", n.Name, got)
		}
		if got := filesWith(t, l.Dir, needles[n.Name], false); len(got) != 0 {
			t.Errorf("%s's private key is in the lab's directory: %v", n.Name, got)
		}
	}
}

// keyNeedles are what any copy of the key would contain: the WireGuard key
// itself, or lines of the PEM body of tinc's RSA key.
func keyNeedles(t *testing.T, key string) [][]byte {
	var body []string
	for _, line := range strings.Split(key, "\n") {
		if len(line) == 64 && !strings.HasPrefix(line, "-----") {
			body = append(body, line)
		}
	}
	switch {
	case len(key) == 44 && !strings.Contains(key, "\n"):
		return [][]byte{[]byte(key)}
	case len(body) >= 4:
		return [][]byte{[]byte(body[1]), []byte(body[len(body)/2])}
	}
	t.Fatalf("unexpected private key format (%d bytes)", len(key))
	return nil
}

// filesWith lists the regular files under dir (only its top level unless
// deep) holding any needle, as paths relative to dir with a leading "/".
func filesWith(t *testing.T, dir string, needles [][]byte, deep bool) []string {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("look for keys: %v", err)
	}
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && !deep {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, k := range needles {
			if bytes.Contains(b, k) {
				found = append(found, "/"+strings.TrimPrefix(p, dir+"/"))
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("look for keys in %s: %v", dir, err)
	}
	return found
}

// TestClassifyCapture: the capture's verdict on tcpdump's lines, per kind.
func TestClassifyCapture(t *testing.T) {
	nodes := map[string]bool{"10.231.0.11": true, "10.231.0.12": true, "10.231.0.100": true}
	dump := strings.Join([]string{
		"IP 10.231.0.11.51820 > 10.231.0.12.51820: UDP, length 148",
		"IP 10.231.0.12.655 > 10.231.0.11.655: UDP, length 1100",
		"IP 10.231.0.11.40512 > 10.231.0.12.655: tcp 52",
		"IP 10.231.0.11.5405 > 10.231.0.12.5405: UDP, length 200",
		"IP 10.231.0.12.49152 > 10.231.0.11.1023: tcp 1448",
		"IP 10.231.0.100 > 10.231.0.12: ICMP echo request, id 1, seq 1, length 64",
		"IP 10.231.0.11.51820 > 10.231.0.9.51820: UDP, length 148",
		"IP6 fe80::1 > ff02::2: ICMP6, router solicitation, length 16",
	}, "\n")
	for _, c := range []struct {
		kind                  string
		tunnel, bytes, others int
	}{
		{inventory.NetworkWireGuard, 1, 148, 5},
		{inventory.NetworkTinc, 2, 1152, 4},
	} {
		inv := &inventory.Inventory{Network: inventory.Network{Type: c.kind}}
		got := classify(dump, inv, nodes)
		if got.tunnel != c.tunnel || got.tunnelBytes != c.bytes || len(got.others) != c.others || got.skipped != 2 {
			t.Errorf("%s: %+v; want %d tunnel packets of %d bytes, %d others, 2 skipped", c.kind, got, c.tunnel, c.bytes, c.others)
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
