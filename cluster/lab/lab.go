package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/internal/rootfs"
)

// Lab is a lab that is (or was) up: where its files are and what its nodes
// are. Its state is kept in <Dir>/lab.json between commands.
type Lab struct {
	Dir      string       `json:"dir"`
	CacheDir string       `json:"cache_dir"`
	Subnet   netip.Prefix `json:"subnet"`
	Release  string       `json:"release"` // the nodes' Debian release (codename)
	Base     string       `json:"base"`    // the base root the nodes overlay
	Nodes    []Node       `json:"nodes"`

	progress io.Writer
}

// ErrNoLab means there is no lab state in the directory.
var ErrNoLab = errors.New("no lab is up")

// Files in the lab directory. The key and host keys survive `lab down`, so
// known_hosts entries and the user's ssh config stay valid.
func (l *Lab) KeyPath() string        { return filepath.Join(l.Dir, "id_ed25519") }
func (l *Lab) KnownHostsPath() string { return filepath.Join(l.Dir, "known_hosts") }
func (l *Lab) InventoryPath() string  { return filepath.Join(l.Dir, "cluster.toml") }
func (l *Lab) statePath() string      { return filepath.Join(l.Dir, "lab.json") }
func (l *Lab) nodesDir() string       { return filepath.Join(l.Dir, "nodes") }
func (l *Lab) hostKeyPath(node string) string {
	return filepath.Join(l.Dir, "hostkeys", node, "ssh_host_ed25519_key")
}
func (l *Lab) paths(node string) nodePaths {
	return nodePaths{rootfs.Layer{Dir: filepath.Join(l.nodesDir(), node)}}
}

// HostAddress is the host's address on the lab bridge (.1).
func (l *Lab) HostAddress() netip.Addr { return hostAddr(l.Subnet, 1) }

// FloatingIP is the address the inventory gives the cluster (.100).
func (l *Lab) FloatingIP() netip.Prefix {
	return netip.PrefixFrom(hostAddr(l.Subnet, 100), l.Subnet.Bits())
}

// Node returns the named node.
func (l *Lab) Node(name string) (Node, error) {
	var names []string
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, nil
		}
		names = append(names, n.Name)
	}
	return Node{}, fmt.Errorf("no node %q in the lab (nodes: %s)", name, strings.Join(names, ", "))
}

func newLab(o Options, base string) *Lab {
	l := &Lab{Dir: o.Dir, CacheDir: o.CacheDir, Subnet: o.Subnet, Release: o.Release, Base: base, progress: o.Progress}
	for i := 1; i <= o.Nodes; i++ {
		n := Node{Name: fmt.Sprintf("node%d", i), Address: hostAddr(o.Subnet, byte(10+i))}
		if i == 3 {
			n.Role = inventory.RoleTiebreaker
		}
		l.Nodes = append(l.Nodes, n)
	}
	return l
}

// Open reads the state of the lab in dir (DefaultDir if empty).
func Open(dir string) (*Lab, error) {
	if dir == "" {
		dir = DefaultDir
	}
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s; start one with: debship lab up", ErrNoLab, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open lab: %w", err)
	}
	l := &Lab{progress: io.Discard}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("open lab: %s: %w", filepath.Join(dir, "lab.json"), err)
	}
	l.Dir = dir
	return l, nil
}

// SetProgress directs progress lines of later calls (nil: discard).
func (l *Lab) SetProgress(w io.Writer) {
	if w == nil {
		w = io.Discard
	}
	l.progress = w
}

func (l *Lab) sameAs(o *Lab) bool {
	if l.CacheDir != o.CacheDir || l.Subnet != o.Subnet || l.Release != o.Release || l.Base != o.Base || len(l.Nodes) != len(o.Nodes) {
		return false
	}
	for i := range l.Nodes {
		if l.Nodes[i] != o.Nodes[i] {
			return false
		}
	}
	return true
}

func (l *Lab) writeState() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.statePath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, l.statePath())
}

// Up brings a lab up and returns it. The first run builds the base root
// (minutes); later runs boot from the cache in seconds. If the same lab is
// already up, Up only starts stopped nodes and plugs pulled cables; anything
// else (a killed earlier run, a lab of another shape) is cleaned up first and
// the nodes start from the pristine base.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	if err := CheckHost(); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	unlock, err := Flock(ctx, LockPath, opts.Progress)
	if err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	defer unlock()
	start := time.Now()
	b, err := newBase(opts.CacheDir, opts.Release)
	if err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	want := newLab(opts, b.Dir)
	var snap *Snapshot
	if opts.Snapshot != "" {
		if snap, err = OpenSnapshot(opts.Dir, opts.Snapshot); err != nil {
			return nil, fmt.Errorf("lab up: %w", err)
		}
	} else if cur, err := Open(opts.Dir); err == nil && cur.sameAs(want) && b.Ready() {
		cur.progress = opts.Progress
		if err := cur.resume(ctx); err != nil {
			return nil, fmt.Errorf("lab up: %w", err)
		}
		return cur, nil
	}
	if err := cleanup(ctx, opts.Dir); err != nil {
		return nil, fmt.Errorf("lab up: clean up an earlier lab: %w", err)
	}
	if err := want.purge(); err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	if snap == nil {
		if err := b.ensure(ctx, opts.Progress); err != nil {
			return nil, fmt.Errorf("lab up: %w", err)
		}
	}
	bootStart := time.Now()
	if err := want.create(ctx, snap); err != nil {
		// Leave nothing running; the node directories stay for their
		// console logs until the next up.
		_ = cleanup(context.WithoutCancel(ctx), opts.Dir)
		return nil, fmt.Errorf("lab up: %w", err)
	}
	fmt.Fprintf(opts.Progress, "lab up: %d nodes booted in %s (total %s)\n", len(want.Nodes),
		time.Since(bootStart).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	return want, nil
}

// create boots a fresh lab: keys, known_hosts, bridge, then every node;
// or, from a snapshot, the snapshot's keys, files and node disks.
func (l *Lab) create(ctx context.Context, snap *Snapshot) error {
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return err
	}
	if snap != nil {
		start := time.Now()
		if err := l.restoreSnapshot(ctx, snap); err != nil {
			return err
		}
		fmt.Fprintf(l.progress, "lab up: snapshot %s restored in %s\n", snap.Name, time.Since(start).Round(100*time.Millisecond))
	} else {
		if _, err := ensureKey(l.KeyPath(), "debship-lab"); err != nil {
			return err
		}
		if err := l.writeAccess(); err != nil {
			return err
		}
	}
	if err := l.startNodes(ctx, l.Nodes); err != nil {
		return err
	}
	// Last: a lab.json means "this lab is up"; a run killed before this
	// point leaves none, and the next up cleans by name.
	return l.writeState()
}

// writeAccess writes what a user needs to reach the nodes: known_hosts and
// the inventory, both owned by whoever ran sudo.
func (l *Lab) writeAccess() error {
	if err := l.writeKnownHosts(); err != nil {
		return err
	}
	if err := l.writeInventory(); err != nil {
		return err
	}
	return l.handOver()
}

// resume makes an existing lab whole again.
func (l *Lab) resume(ctx context.Context) error {
	var stopped []Node
	for _, n := range l.Nodes {
		if _, ok := nspawnPID(n.Name); !ok {
			stopped = append(stopped, n)
		} else if !linkUp(n.Name) {
			if err := setLink(ctx, n.Name, true); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
	}
	if err := l.writeAccess(); err != nil {
		return err
	}
	if len(stopped) == 0 {
		fmt.Fprintf(l.progress, "lab already up (%d nodes)\n", len(l.Nodes))
		return nil
	}
	return l.startNodes(ctx, stopped)
}

func (l *Lab) writeKnownHosts() error {
	var b strings.Builder
	for _, n := range l.Nodes {
		s, err := ensureKey(l.hostKeyPath(n.Name), "root@"+n.Name)
		if err != nil {
			return err
		}
		b.WriteString(knownHostsLine([]string{n.Name, n.Address.String()}, s.PublicKey()))
	}
	return writeFile(l.KnownHostsPath(), []byte(b.String()), 0o644)
}

// startNodes boots nodes and waits until each accepts SSH.
func (l *Lab) startNodes(ctx context.Context, nodes []Node) error {
	if err := ensureNspawnRuntime(); err != nil {
		return err
	}
	host := netip.PrefixFrom(l.HostAddress(), l.Subnet.Bits())
	if err := ensureBridge(ctx, host); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := l.bootNode(ctx, n); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return l.waitAll(ctx, nodes)
}

func (l *Lab) waitAll(ctx context.Context, nodes []Node) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(90 * time.Second)
			waitBooted(ctx, n.Name, deadline)
			errs[i] = l.waitSSH(ctx, n, time.Until(deadline))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// bootNode prepares a node's root, identity and network, and starts nspawn.
func (l *Lab) bootNode(ctx context.Context, n Node) error {
	p := l.paths(n.Name)
	if err := p.mountRoot(l.Base); err != nil {
		return err
	}
	// Only on the first boot of a layer: after a crash the node keeps its
	// disk like a real machine, including what cluster apply changed.
	if !p.hasIdentity() {
		client, err := ensureKey(l.KeyPath(), "debship-lab")
		if err != nil {
			return err
		}
		hostKey, err := ensureKey(l.hostKeyPath(n.Name), "root@"+n.Name)
		if err != nil {
			return err
		}
		if err := p.writeIdentity(identity{
			Node:      n,
			HostKey:   l.hostKeyPath(n.Name),
			ClientPub: sshPub(client),
			Signer:    hostKey,
		}); err != nil {
			return fmt.Errorf("write identity: %w", err)
		}
	}
	if err := ensureNodeNet(ctx, n.Name, netip.PrefixFrom(n.Address, l.Subnet.Bits())); err != nil {
		return err
	}
	if _, err := launchNspawn(ctx, p, n.Name); err != nil {
		return err
	}
	return nil
}
