package lab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/rootfs"
)

// Defaults. The subnet is a private /24 that exists only on the lab bridge and
// inside the node namespaces: host .1, nodes .11 .12 .13, floating IP .100.
const (
	DefaultDir      = "/var/lib/debship/lab"
	DefaultCacheDir = "/var/cache/debship/lab"
	DefaultNodes    = 2
	// DefaultRelease is the Debian release the nodes run: today's stable.
	DefaultRelease = "trixie"
	MaxNodes       = 3
	AdminUser      = "admin"
)

// LockPath serialises lab mutations machine-wide: one lab per machine, and
// two commands must not boot or tear down the same nodes at once.
const LockPath = "/run/debship-lab.lock"

// Flock is rootfs.Flock, for the lab's users (labtest's session lock).
func Flock(ctx context.Context, path string, progress io.Writer) (unlock func(), err error) {
	return rootfs.Flock(ctx, path, progress)
}

// DefaultSubnet is the lab network unless Options.Subnet says otherwise.
var DefaultSubnet = netip.MustParsePrefix("10.231.0.0/24")

// Options configure Up. The zero value means the defaults.
type Options struct {
	// Dir holds the lab's state: inventory, SSH key, known_hosts, stable host
	// keys and the per-node overlay layers. Default DefaultDir.
	Dir string
	// CacheDir holds the base root (rebuilt when the package list changes)
	// and downloaded .debs. Default DefaultCacheDir.
	CacheDir string
	// Nodes is 2, or 3 (the third is the tie-breaker). Default 2.
	Nodes int
	// Release is the Debian release of the nodes, by codename ("trixie",
	// "bookworm"): one of internal/debian's releases. Default DefaultRelease.
	Release string
	// Subnet is an IPv4 /24 for the lab network. Default DefaultSubnet.
	Subnet netip.Prefix
	// Snapshot, when set, brings the lab back as a saved snapshot: its
	// nodes, release and subnet (a Nodes, Release or Subnet that differs is
	// an error), its node disks and its files.
	Snapshot string
	// Progress receives one line per step (nil: discard).
	Progress io.Writer
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Snapshot != "" {
		s, err := OpenSnapshot(o.Dir, o.Snapshot)
		if err != nil {
			return o, err
		}
		if o, err = s.shape(o); err != nil {
			return o, err
		}
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if o.Nodes == 0 {
		o.Nodes = DefaultNodes
	}
	if o.Nodes < 2 || o.Nodes > MaxNodes {
		return o, fmt.Errorf("a lab has 2 or 3 nodes, not %d", o.Nodes)
	}
	if o.Release == "" {
		o.Release = DefaultRelease
	}
	if _, ok := debian.BySuite(o.Release); !ok {
		return o, fmt.Errorf("the lab runs %s, not %q", strings.Join(Releases(), " or "), o.Release)
	}
	if !o.Subnet.IsValid() {
		o.Subnet = DefaultSubnet
	}
	if !o.Subnet.Addr().Is4() || o.Subnet.Bits() != 24 {
		return o, fmt.Errorf("the lab subnet must be an IPv4 /24 such as %s, not %s", DefaultSubnet, o.Subnet)
	}
	o.Subnet = o.Subnet.Masked()
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

// hostAddr returns the address .n of a /24.
func hostAddr(subnet netip.Prefix, n byte) netip.Addr {
	a := subnet.Masked().Addr().As4()
	a[3] = n
	return netip.AddrFrom4(a)
}

// Releases are the codenames a lab can run, newest first.
func Releases() []string {
	var out []string
	for _, r := range debian.Releases {
		out = append(out, r.Suite)
	}
	return out
}
