package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gitlab.com/debship/debship/internal/rootfs"
)

// Names of the lab's network objects. Fixed per machine (one lab at a time)
// and prefixed, so cleanup finds leftovers of a killed run by name.
const (
	BridgeName  = "debship-lab"  // host bridge, holds the host address .1
	netnsPrefix = "debship-lab-" // + node name
	vethPrefix  = "debship-"     // + node name: the host end (≤ 15 bytes)
	NodeNIC     = "eth0"         // the node's end, inside its netns
	netnsRunDir = "/run/netns"
	sysClassNet = "/sys/class/net"
)

func netnsName(node string) string { return netnsPrefix + node }
func netnsPath(node string) string { return filepath.Join(netnsRunDir, netnsName(node)) }
func vethName(node string) string  { return vethPrefix + node }

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join(sysClassNet, name))
	return err == nil
}

// ensureBridge creates the lab bridge with the host's address on it. Nothing
// else on the host changes: no forwarding, no NAT, no routes beyond the
// connected /24.
func ensureBridge(ctx context.Context, host netip.Prefix) error {
	if !linkExists(BridgeName) {
		if err := run(ctx, "ip", "link", "add", "name", BridgeName, "type", "bridge"); err != nil {
			return fmt.Errorf("create bridge: %w", err)
		}
	}
	if err := run(ctx, "ip", "addr", "replace", host.String(), "dev", BridgeName); err != nil {
		return fmt.Errorf("bridge address: %w", err)
	}
	if err := run(ctx, "ip", "link", "set", BridgeName, "up"); err != nil {
		return fmt.Errorf("bridge up: %w", err)
	}
	return nil
}

// ensureNodeNet gives a node its netns, a veth with one end on the bridge
// and the other (NodeNIC) inside, and its address, and no default route: the
// node reaches only the lab subnet. A stale floating IP from before a crash
// is dropped, as a real reboot would.
func ensureNodeNet(ctx context.Context, node string, addr netip.Prefix) error {
	ns := netnsName(node)
	if _, err := os.Stat(netnsPath(node)); err != nil {
		if err := run(ctx, "ip", "netns", "add", ns); err != nil {
			return fmt.Errorf("create netns: %w", err)
		}
	}
	if err := run(ctx, "ip", "-n", ns, "link", "show", NodeNIC); err != nil {
		if linkExists(vethName(node)) { // half of an old pair
			_ = run(ctx, "ip", "link", "del", vethName(node))
		}
		if err := run(ctx, "ip", "link", "add", vethName(node), "type", "veth",
			"peer", "name", NodeNIC, "address", nodeMAC(addr.Addr()), "netns", ns); err != nil {
			return fmt.Errorf("create veth: %w", err)
		}
	}
	steps := [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "flush", "dev", NodeNIC},
		{"-n", ns, "addr", "add", addr.String(), "dev", NodeNIC},
		{"link", "set", vethName(node), "master", BridgeName, "up"},
		{"-n", ns, "link", "set", NodeNIC, "up"},
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			return fmt.Errorf("node network: %w", err)
		}
	}
	return nil
}

// nodeMAC is derived from the node's address, so the host's neighbour cache
// stays right across restarts.
func nodeMAC(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:d5:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// setLink plugs (up) or pulls (down) the node's cable: the host end of its
// veth. The node keeps running and sees NO-CARRIER.
func setLink(ctx context.Context, node string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if err := run(ctx, "ip", "link", "set", vethName(node), state); err != nil {
		return fmt.Errorf("link %s: %w", state, err)
	}
	return nil
}

// linkUp reports whether the node's cable is plugged in.
func linkUp(node string) bool {
	b, err := os.ReadFile(filepath.Join(sysClassNet, vethName(node), "flags"))
	if err != nil {
		return false
	}
	flags, err := strconv.ParseInt(strings.TrimSpace(string(b)), 0, 64)
	return err == nil && flags&1 != 0 // IFF_UP
}

// removeNetwork deletes every lab netns, veth and the bridge, including
// those of killed runs. Deleting a netns destroys the veth end inside it and
// with it the pair.
func removeNetwork(ctx context.Context) error {
	var errs []error
	entries, _ := os.ReadDir(netnsRunDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), netnsPrefix) {
			if err := run(ctx, "ip", "netns", "del", e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	links, _ := os.ReadDir(sysClassNet)
	for _, l := range links {
		n := l.Name()
		if n == BridgeName || strings.HasPrefix(n, vethPrefix+"node") {
			if err := run(ctx, "ip", "link", "del", n); err != nil && linkExists(n) {
				errs = append(errs, err)
			}
		}
	}
	// `ip netns add` bind-mounts /run/netns onto itself; once no namespace of
	// anyone is left, that mount is ours to drop.
	if left, _ := os.ReadDir(netnsRunDir); len(left) == 0 && rootfs.IsMountpoint(netnsRunDir) {
		if err := rootfs.Unmount(netnsRunDir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove lab network: %w", err)
	}
	return nil
}

// run runs a host command; a failure carries the command line and the end
// of its output.
func run(ctx context.Context, name string, args ...string) error {
	return rootfs.Runner{}.Run(ctx, nil, append([]string{name}, args...)...)
}
