package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Snapshot is a saved lab: every node's disk (its overlay layer and its
// brick directory) and the files that reach the nodes (inventory, SSH key,
// host keys, known_hosts), so that `lab up --snapshot` brings back the same
// cluster, applied and deployed, in the time it takes to boot.
type Snapshot struct {
	Name    string       `json:"name"`
	Created time.Time    `json:"created"`
	Release string       `json:"release"`
	Subnet  netip.Prefix `json:"subnet"`
	Nodes   []Node       `json:"nodes"`
	// Base is the base root the node layers were written over, and
	// BaseBuilt when it was finished: a layer holds only what differs
	// from its base, so it fits that one build and no other.
	Base      string    `json:"base"`
	BaseBuilt time.Time `json:"base_built"`
	// SizeBytes is the disk space the snapshot takes (filled in by
	// ListSnapshots).
	SizeBytes int64 `json:"size_bytes,omitempty"`
}

// snapshotName is what a name may be: it becomes a directory name.
var snapshotName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// CheckSnapshotName says in one sentence what is wrong with a name.
func CheckSnapshotName(name string) error {
	if !snapshotName.MatchString(name) {
		return fmt.Errorf("snapshot name %q: use 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. applied-1.4)", name)
	}
	return nil
}

// snapshotFiles are the lab files a snapshot keeps besides the node disks,
// relative to the lab directory.
var snapshotFiles = []string{"cluster.toml", "id_ed25519", "id_ed25519.pub", "known_hosts", "hostkeys"}

func snapshotsDir(labDir string) string { return filepath.Join(labDir, "snapshots") }

func snapshotDir(labDir, name string) string { return filepath.Join(snapshotsDir(labDir), name) }

// SaveSnapshot saves the running lab as name. The nodes are frozen (their
// cgroup, every process at once) while their disks are copied, so the copy
// is what the disks held at one instant, as a VM snapshot; they run on
// afterwards as if nothing happened. An existing snapshot of that name is
// refused unless replace is set.
func (l *Lab) SaveSnapshot(ctx context.Context, name string, replace bool) (*Snapshot, error) {
	if err := CheckSnapshotName(name); err != nil {
		return nil, err
	}
	unlock, err := Flock(ctx, LockPath, l.progress)
	if err != nil {
		return nil, fmt.Errorf("lab snapshot save: %w", err)
	}
	defer unlock()
	for _, n := range l.Nodes {
		if _, ok := nspawnPID(n.Name); !ok {
			return nil, fmt.Errorf("lab snapshot save: %s is not running; start it with: debship lab start %s", n.Name, n.Name)
		}
	}
	final := snapshotDir(l.Dir, name)
	if _, err := os.Stat(final); err == nil && !replace {
		return nil, fmt.Errorf("lab snapshot save: snapshot %s exists; remove it with: debship lab snapshot rm %s (or save with --force)", name, name)
	}
	built, err := baseBuilt(l.Base)
	if err != nil {
		return nil, fmt.Errorf("lab snapshot save: %w", err)
	}
	start := time.Now()
	s := &Snapshot{Name: name, Created: start.UTC().Truncate(time.Second), Release: l.Release,
		Subnet: l.Subnet, Nodes: l.Nodes, Base: l.Base, BaseBuilt: built}
	tmp := filepath.Join(snapshotsDir(l.Dir), "."+name+".saving")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("lab snapshot save: %w", err)
	}
	if err := l.writeSnapshot(ctx, s, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("lab snapshot save: %w", err)
	}
	// The old snapshot goes only once the new one is whole.
	if err := os.RemoveAll(final); err != nil {
		return nil, fmt.Errorf("lab snapshot save: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("lab snapshot save: %w", err)
	}
	fmt.Fprintf(l.progress, "lab snapshot %s saved in %s\n", name, time.Since(start).Round(100*time.Millisecond))
	return s, nil
}

// writeSnapshot fills dir: the node disks copied while frozen, then the
// lab's files and snapshot.json.
func (l *Lab) writeSnapshot(ctx context.Context, s *Snapshot, dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil { // it holds keys
		return err
	}
	frozen := time.Now()
	thaw, err := freezeNodes(l.Nodes)
	if err != nil {
		return err
	}
	for _, n := range l.Nodes {
		if err = copyNodeDisk(ctx, l.paths(n.Name), filepath.Join(dir, "nodes", n.Name)); err != nil {
			break
		}
	}
	if tErr := thaw(); tErr != nil && err == nil {
		err = tErr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(l.progress, "  node disks copied (nodes frozen for %s)\n", time.Since(frozen).Round(10*time.Millisecond))
	for _, f := range snapshotFiles {
		if err := copyTree(ctx, filepath.Join(l.Dir, f), filepath.Join(dir, "files", f)); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "snapshot.json"), append(b, '\n'), 0o600)
}

// copyNodeDisk copies what makes a node's disk: the overlay's upper
// directory, the bricks and the identity mark (the layer's work directory
// is overlayfs's scratch space, and root is only a mount point).
func copyNodeDisk(ctx context.Context, from nodePaths, to string) error {
	dst := nodePaths{from.Layer}
	dst.Dir = to
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, p := range [][2]string{
		{from.Upper(), dst.Upper()},
		{from.Bricks(), dst.Bricks()},
		{from.identityMark(), dst.identityMark()},
	} {
		if err := copyTree(ctx, p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies a file or directory with everything overlayfs and
// GlusterFS keep beside the data: ownership, modes, hard links, device
// nodes (overlayfs's whiteouts) and extended attributes (trusted.overlay.*,
// trusted.gfid). cp -a does all of it, and shares blocks where the file
// system can (--reflink=auto).
func copyTree(ctx context.Context, from, to string) error {
	if _, err := os.Lstat(from); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", "--", from, to).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copy %s: %v: %s", from, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// baseBuilt is when the base root was finished (its directory appears by a
// rename at the end of the build and is never written again).
func baseBuilt(base string) (time.Time, error) {
	st, err := os.Stat(base)
	if err != nil {
		return time.Time{}, fmt.Errorf("base root: %w", err)
	}
	return st.ModTime().UTC(), nil
}

// Fits reports whether the base root the snapshot was saved over is still
// the one built then: a layer holds only what differs from its base.
func (s *Snapshot) Fits() bool {
	built, err := baseBuilt(s.Base)
	return err == nil && built.Equal(s.BaseBuilt)
}

// OpenSnapshot reads a snapshot's description.
func OpenSnapshot(labDir, name string) (*Snapshot, error) {
	if err := CheckSnapshotName(name); err != nil {
		return nil, err
	}
	if labDir == "" {
		labDir = DefaultDir
	}
	b, err := os.ReadFile(filepath.Join(snapshotDir(labDir, name), "snapshot.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no snapshot %s in %s (list them with: debship lab snapshot list)", name, snapshotsDir(labDir))
	}
	if err != nil {
		return nil, err
	}
	s := &Snapshot{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	return s, nil
}

// ListSnapshots lists the lab's snapshots, oldest first.
func ListSnapshots(labDir string) ([]Snapshot, error) {
	if labDir == "" {
		labDir = DefaultDir
	}
	entries, err := os.ReadDir(snapshotsDir(labDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		s, err := OpenSnapshot(labDir, e.Name())
		if err != nil {
			continue // not a snapshot (a name the rules refuse, no snapshot.json)
		}
		s.SizeBytes = diskUsage(snapshotDir(labDir, e.Name()))
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// RemoveSnapshot deletes a snapshot.
func RemoveSnapshot(ctx context.Context, labDir, name string) error {
	if _, err := OpenSnapshot(labDir, name); err != nil {
		return err
	}
	if labDir == "" {
		labDir = DefaultDir
	}
	unlock, err := Flock(ctx, LockPath, nil)
	if err != nil {
		return err
	}
	defer unlock()
	// Renamed away first, so a half-deleted snapshot is never listed.
	gone := filepath.Join(snapshotsDir(labDir), "."+name+".removing")
	if err := os.Rename(snapshotDir(labDir, name), gone); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}

// diskUsage adds up the blocks of a tree, counting a hard-linked file once.
func diskUsage(dir string) int64 {
	var total int64
	seen := map[[2]uint64]bool{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if id, blocks, ok := fileBlocks(info); ok && !seen[id] {
			seen[id] = true
			total += blocks * 512
		}
		return nil
	})
	return total
}

// restoreSnapshot puts a snapshot's disks and files into the (cleaned) lab
// directory, ready for startNodes.
func (l *Lab) restoreSnapshot(ctx context.Context, s *Snapshot) error {
	if !s.Fits() || s.Base != l.Base {
		return fmt.Errorf("snapshot %s was saved over the Debian %s base root built at %s, which has been rebuilt or removed since (the package list changed); apply again and save a new snapshot",
			s.Name, s.Release, s.BaseBuilt.Format(time.RFC3339))
	}
	dir := snapshotDir(l.Dir, s.Name)
	for _, f := range snapshotFiles {
		dst := filepath.Join(l.Dir, f)
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if err := copyTree(ctx, filepath.Join(dir, "files", f), dst); err != nil {
			return err
		}
	}
	for _, n := range l.Nodes {
		p := l.paths(n.Name)
		src := nodePaths{p.Layer}
		src.Dir = filepath.Join(dir, "nodes", n.Name)
		if err := copyNodeDisk(ctx, src, p.Dir); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return l.handOver()
}

// fileBlocks is a file's identity (device, inode) and its 512-byte blocks.
func fileBlocks(info fs.FileInfo) ([2]uint64, int64, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return [2]uint64{}, 0, false
	}
	return [2]uint64{uint64(st.Dev), st.Ino}, st.Blocks, true
}

// shape fills the lab's shape from the snapshot; a shape asked for that is
// not the snapshot's is refused rather than silently changed.
func (s *Snapshot) shape(o Options) (Options, error) {
	switch {
	case o.Nodes != 0 && o.Nodes != len(s.Nodes):
		return o, fmt.Errorf("snapshot %s has %d nodes, not %d: leave out --nodes", s.Name, len(s.Nodes), o.Nodes)
	case o.Release != "" && o.Release != s.Release:
		return o, fmt.Errorf("snapshot %s runs %s, not %s: leave out --release", s.Name, s.Release, o.Release)
	case o.Subnet.IsValid() && o.Subnet.Masked() != s.Subnet:
		return o, fmt.Errorf("snapshot %s uses the subnet %s, not %s: leave out --subnet", s.Name, s.Subnet, o.Subnet)
	}
	o.Nodes, o.Release, o.Subnet = len(s.Nodes), s.Release, s.Subnet
	return o, nil
}

// Applied reports whether `cluster apply` has set the lab's nodes up: the
// corosync configuration it writes is on every node's disk (the base root
// has none).
func (l *Lab) Applied() bool {
	for _, n := range l.Nodes {
		if _, err := os.Stat(filepath.Join(l.paths(n.Name).Upper(), "etc/corosync/corosync.conf")); err != nil {
			return false
		}
	}
	return len(l.Nodes) > 0
}
