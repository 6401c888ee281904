package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gitlab.com/debship/debship/internal/rootfs"
	"gitlab.com/debship/debship/templates"
)

// cgroupPrefix names the per-node cgroups (see nspawn.go for why they exist).
const cgroupPrefix = "debship-lab-"

// cgroupHierarchies are the mount points a node's cgroup is made in: the
// cgroup2 hierarchy (the whole tree on a unified host, /sys/fs/cgroup/unified
// on a hybrid one) and the v1 name=systemd hierarchy when there is one.
func cgroupHierarchies() ([]string, error) {
	ms, err := rootfs.Mounts()
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	var v2, named string
	for _, m := range ms {
		switch {
		case m.FSType == "cgroup2" && v2 == "":
			v2 = m.Target
		case m.FSType == "cgroup" && named == "" && hasOpt(m.SuperOpts, "name=systemd"):
			named = m.Target
		}
	}
	var out []string
	for _, h := range []string{v2, named} {
		if h != "" {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("cgroups: neither a cgroup2 nor a name=systemd hierarchy is mounted")
	}
	return out, nil
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// cgroupDirs returns the cgroup directory of a node (or of the base build)
// in every hierarchy.
func cgroupDirs(node string) ([]string, error) {
	hs, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range hs {
		out = append(out, filepath.Join(h, cgroupPrefix+node))
	}
	return out, nil
}

// labCgroups lists every lab cgroup of any node, also of runs that were
// killed and left no state.
func labCgroups() ([]string, error) {
	hs, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range hs {
		m, _ := filepath.Glob(filepath.Join(h, cgroupPrefix+"*"))
		out = append(out, m...)
	}
	return out, nil
}

// cgroupPIDs lists the processes in a cgroup and all cgroups below it.
func cgroupPIDs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		f, err := os.Open(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if pid, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// cgroupCommand returns a command (not started) that runs argv in the
// lab cgroup "debship-lab-<group>" of every hierarchy, emptied of sub-cgroups
// a previous run left. Not bound to a context: nodes must outlive `lab up`,
// and builds are stopped by killing their cgroup, which also gets the
// grandchildren (dpkg under apt under chroot) a context would miss.
func cgroupCommand(group string, argv []string) (*exec.Cmd, error) {
	cgs, err := cgroupDirs(group)
	if err != nil {
		return nil, err
	}
	var procs []string
	for _, cg := range cgs {
		if err := os.MkdirAll(cg, 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
		emptyChildren(cg)
		procs = append(procs, filepath.Join(cg, "cgroup.procs"))
	}
	script, err := templates.Raw("lab/cgroup-exec.sh")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", string(script), "debship-lab-exec"}, argv...)...)
	cmd.Env = append(os.Environ(), "DEBSHIP_LAB_CGROUPS="+strings.Join(procs, " "))
	return cmd, nil
}

// killCgroup SIGKILLs every process in dir's subtree until it is empty.
func killCgroup(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := alive(cgroupPIDs(dir))
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v in %s survive SIGKILL", pids, dir)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroup deletes a cgroup and its children, deepest first. It only
// works once the processes are gone.
func removeCgroup(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var errs []error
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		var err error
		for i := 0; i < 50; i++ { // a dying task leaves the cgroup a moment later
			if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// stopGroup kills everything in a lab cgroup and removes it.
func stopGroup(group string) error {
	dirs, err := cgroupDirs(group)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		if err := killCgroup(d); err != nil {
			errs = append(errs, err)
		}
		if err := removeCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// emptyChildren removes the empty sub-cgroups a previous boot of the node
// left, so a restarted container starts with a clean tree.
func emptyChildren(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			_ = removeCgroup(filepath.Join(dir, e.Name()))
		}
	}
}

// freezeNodes stops every process of the nodes at once, through the cgroup2
// freezer where the host has it (the processes cannot tell), else by
// SIGSTOP. thaw lets them run on.
func freezeNodes(nodes []Node) (thaw func() error, err error) {
	var thaws []func() error
	thaw = func() error {
		var errs []error
		for _, t := range thaws {
			errs = append(errs, t())
		}
		return errors.Join(errs...)
	}
	for _, n := range nodes {
		t, err := freezeNode(n.Name)
		if err != nil {
			_ = thaw()
			return nil, fmt.Errorf("freeze %s: %w", n.Name, err)
		}
		thaws = append(thaws, t)
	}
	return thaw, nil
}

func freezeNode(node string) (func() error, error) {
	cgs, err := cgroupDirs(node)
	if err != nil {
		return nil, err
	}
	freeze := filepath.Join(cgs[0], "cgroup.freeze")
	if _, err := os.Stat(freeze); err != nil {
		return stopNode(cgs[0])
	}
	if err := os.WriteFile(freeze, []byte("1"), 0o644); err != nil {
		return nil, err
	}
	thaw := func() error { return os.WriteFile(freeze, []byte("0"), 0o644) }
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(cgs[0], "cgroup.events"))
		if err == nil && strings.Contains(string(b), "frozen 1") {
			return thaw, nil
		}
		if time.Now().After(deadline) {
			_ = thaw()
			return nil, fmt.Errorf("%s did not freeze within 10 s", cgs[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopNode is the freezer of a host without cgroup2's: SIGSTOP to every
// process of the cgroup, SIGCONT to thaw.
func stopNode(cg string) (func() error, error) {
	pids := alive(cgroupPIDs(cg))
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	return func() error {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGCONT)
		}
		return nil
	}, nil
}
