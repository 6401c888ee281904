package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/internal/rootfs"
)

// Down stops every node (an orderly poweroff, SIGKILL after 10 s) and removes
// everything the lab made on the host: processes, mounts, network
// namespaces, veths, the bridge, cgroups and nspawn's tmpfs. Keys, host keys
// and the base root cache stay. Down without a lab cleans leftovers anyway.
func Down(ctx context.Context, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab down: %w", &PrereqError{NotRoot: true})
	}
	unlock, err := Flock(ctx, LockPath, o.Progress)
	if err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	defer unlock()
	start := time.Now()
	l, err := Open(o.Dir)
	if err != nil {
		// No (or unreadable) state: clean up by name all the same.
		if !errors.Is(err, ErrNoLab) {
			fmt.Fprintf(o.Progress, "lab down: %v; cleaning up anyway\n", err)
		}
		l = newLab(o, "")
	}
	var wg sync.WaitGroup
	for _, n := range l.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			poweroff(n.Name, 10*time.Second)
		}()
	}
	wg.Wait()
	if err := cleanup(ctx, o.Dir); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	if err := l.purge(); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	fmt.Fprintf(o.Progress, "lab down in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// Down is Down for this lab.
func (l *Lab) Down(ctx context.Context) error {
	return Down(ctx, Options{Dir: l.Dir, CacheDir: l.CacheDir, Progress: l.progress})
}

// poweroff asks a node to shut down (nspawn turns SIGTERM into systemd's
// SIGRTMIN+3) and pulls the plug when it takes longer than limit.
func poweroff(node string, limit time.Duration) {
	pid, ok := nspawnPID(node)
	if !ok {
		return
	}
	_ = syscallKill(pid, sigTERM)
	if waitGone(pid, limit) {
		return
	}
	_ = crashNode(context.Background(), node)
}

// mountSource tags every mount the lab makes (rootfs.UnmountTagged), so that
// cleanup finds them even after a run that was killed and left no state.
const mountSource = "debship-lab"

// cleanup removes what any lab left on the host, found by name, mount source
// and cgroup, so it also works after a run that was killed: processes,
// mounts (overlays, nspawn's tmpfs, build mounts), network, cgroups.
func cleanup(ctx context.Context, dir string) error {
	var errs []error
	all, err := labCgroups()
	if err != nil {
		errs = append(errs, err)
	}
	var cgs []string
	for _, cg := range all {
		// A base build (lab prepare) may be running beside the lab; its
		// next run of the same release cleans up after a killed one.
		if !strings.HasPrefix(filepath.Base(cg), cgroupPrefix+buildGroupPrefix) {
			cgs = append(cgs, cg)
		}
	}
	for _, cg := range cgs {
		if err := killCgroup(cg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := rootfs.UnmountTagged(mountSource); err != nil {
		errs = append(errs, err)
	}
	if err := rootfs.UnmountBelow(filepath.Join(dir, "nodes")); err != nil {
		errs = append(errs, err)
	}
	if err := removeNetwork(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, cg := range cgs {
		if err := removeCgroup(cg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// purge deletes the node layers and the files that describe a running lab.
func (l *Lab) purge() error {
	if ms := rootfs.MountsBelow(l.nodesDir()); len(ms) > 0 {
		return fmt.Errorf("not deleting %s: %s still mounted", l.nodesDir(), strings.Join(ms, ", "))
	}
	var errs []error
	for _, p := range []string{l.nodesDir(), l.statePath(), l.InventoryPath(), l.KnownHostsPath()} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
