package lab

// Every systemd-nspawn workaround of the lab lives in this file. Each one is
// needed on a host whose PID 1 is not systemd (a VM or container running
// tests, as in CI), and its comment says what fails without it; on a host
// with systemd they are harmless.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nspawnRuntimeDir is where nspawn keeps per-container state.
const nspawnRuntimeDir = "/run/systemd/nspawn"

// ensureNspawnRuntime works around nspawn's refusal to clean up its state on
// a disk file system: on exit it fails with "Attempted to remove disk file
// system under /run/systemd/nspawn/propagate/node1, and we can't allow that"
// when /run is not a tmpfs (hosts without systemd often have /run on the root
// file system). A small tmpfs there, named mountSource, is removed by cleanup.
func ensureNspawnRuntime() error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(nspawnRuntimeDir), &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(nspawnRuntimeDir, 0o755); err != nil {
		return fmt.Errorf("nspawn runtime dir: %w", err)
	}
	if err := unix.Statfs(nspawnRuntimeDir, &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		return nil
	}
	if err := unix.Mount(mountSource, nspawnRuntimeDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=16m"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", nspawnRuntimeDir, err)
	}
	return nil
}

// nspawnArgs is the command line that boots one node:
//
//   - --boot: systemd as PID 1, so units, journald and pacemaker's systemd:
//     resources behave as on a VM.
//   - --register=no --keep-unit: there is no host systemd/D-Bus to register
//     with or to ask for a scope ("Failed to open system bus: No such file or
//     directory" with --register=no alone).
//   - --network-namespace-path: the node's own netns with its veth on the lab
//     bridge (network.go); nspawn adds no interfaces of its own.
//   - --capability: NET_ADMIN for IPaddr2, ufw and WireGuard; IPC_LOCK for
//     corosync's mlockall; SYS_ADMIN for FUSE mounts and gluster's trusted.*
//     xattrs on the bricks.
//   - --bind=/dev/fuse: nspawn's /dev has no fuse device, and the gluster
//     client mounts through FUSE.
//   - --bind=<host dir>:/bricks: gluster refuses bricks on the root file
//     system without "force", and an overlay makes a poor brick.
//   - --resolv-conf=off --timezone=off --link-journal=no: keep the node's own
//     files and keep its journal inside the node.
//   - --console=read-only: boot messages go to the node's console.log without
//     nspawn waiting for a terminal.
func nspawnArgs(n nodePaths, name string) []string {
	return []string{
		"--quiet", "--boot",
		"--directory=" + n.Root(),
		"--machine=" + name, "--hostname=" + name,
		"--register=no", "--keep-unit",
		"--console=read-only",
		"--network-namespace-path=" + netnsPath(name),
		"--capability=CAP_NET_ADMIN,CAP_IPC_LOCK,CAP_SYS_ADMIN",
		"--bind=/dev/fuse",
		"--bind=" + n.Bricks() + ":/bricks",
		"--resolv-conf=off", "--timezone=off", "--link-journal=no",
	}
}

// launchNspawn boots a node in the background and returns nspawn's PID.
//
// With --keep-unit nspawn puts the container into "<caller's cgroup>/payload",
// so every node started from one process would share one cgroup and their
// systemds would fight over it. So nspawn starts in the node's own cgroup
// in every hierarchy (cgroupCommand). That cgroup is also how the lab finds
// a node's processes later, even after the tool that started them was killed.
//
// nspawn gets its own session so that it outlives `debship lab up`; this
// process reaps it if it dies while we still run.
func launchNspawn(ctx context.Context, n nodePaths, name string) (int, error) {
	console, err := os.OpenFile(n.Console(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("console log: %w", err)
	}
	defer console.Close()
	cmd, err := cgroupCommand(name, append([]string{"systemd-nspawn"}, nspawnArgs(n, name)...))
	if err != nil {
		return 0, err
	}
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start systemd-nspawn: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	// Until the launcher has exec'd, the process is still "sh"; callers look
	// for nspawn by name, so wait for the exec (or an early death).
	pid := cmd.Process.Pid
	for i := 0; i < 100; i++ {
		if len(alive([]int{pid})) == 0 {
			return 0, fmt.Errorf("systemd-nspawn exited at once; see %s", n.Console())
		}
		if procComm(pid) == "systemd-nspawn" {
			return pid, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("systemd-nspawn did not start; see %s", n.Console())
}

// nspawnPID finds the node's running nspawn through the node's cgroup (not
// a PID file, so that it also works for a lab whose `up` was killed): nspawn
// moves itself into "supervisor" below it (the container is in "payload").
func nspawnPID(name string) (int, bool) {
	cgs, err := cgroupDirs(name)
	if err != nil {
		return 0, false
	}
	for _, cg := range cgs {
		for _, dir := range []string{filepath.Join(cg, "supervisor"), cg} {
			b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				pid, err := strconv.Atoi(f)
				if err == nil && len(alive([]int{pid})) == 1 && procComm(pid) == "systemd-nspawn" {
					return pid, true
				}
			}
		}
	}
	return 0, false
}

// initPID is the host PID of the node's PID 1 (systemd): nspawn's child.
func initPID(name string) (int, bool) {
	np, ok := nspawnPID(name)
	if !ok {
		return 0, false
	}
	cgs, _ := cgroupDirs(name)
	for _, cg := range cgs {
		for _, p := range alive(cgroupPIDs(cg)) {
			if procPPID(p) == np {
				return p, true
			}
		}
	}
	return 0, false
}

// errNotRunning is returned for operations that need a booted node.
var errNotRunning = errors.New("not running")

// waitBooted waits until the node's systemd has finished booting, asked
// from the host (nsenter) rather than over SSH: a node that cluster apply
// hardened rate-limits new SSH connections (ufw limit), and probing it
// while sshd is not up yet would lock this host out for a while. It gives
// up silently at the deadline; the SSH wait after it says what is wrong.
func waitBooted(ctx context.Context, node string, deadline time.Time) {
	for time.Now().Before(deadline) {
		if pid, ok := initPID(node); ok {
			cctx, cancel := context.WithDeadline(ctx, deadline)
			out, _ := exec.CommandContext(cctx, "nsenter", "--target", strconv.Itoa(pid),
				"--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd",
				"--", "/usr/bin/systemctl", "is-system-running", "--wait").Output()
			cancel()
			switch strings.TrimSpace(string(out)) {
			case "running", "degraded", "maintenance", "stopping":
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
