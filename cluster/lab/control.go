package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

var (
	sigTERM     = syscall.SIGTERM
	syscallKill = syscall.Kill
)

func sshPub(s ssh.Signer) []byte { return ssh.MarshalAuthorizedKey(s.PublicKey()) }

// waitGone waits until pid has exited (or is a zombie).
func waitGone(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if len(alive([]int{pid})) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crashNode is a power loss: the cable is pulled first (so a dying node
// cannot answer ARP for a floating IP still configured in its netns), then
// the node's PID 1 is SIGKILLed, which kills its whole PID namespace at once.
// Whatever is left in the node's cgroup (nspawn) is killed too.
func crashNode(ctx context.Context, node string) error {
	if linkExists(vethName(node)) {
		if err := setLink(ctx, node, false); err != nil {
			return err
		}
	}
	if pid, ok := initPID(node); ok {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if pid, ok := nspawnPID(node); ok && !waitGone(pid, 5*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	cgs, err := cgroupDirs(node)
	if err != nil {
		return err
	}
	for _, cg := range cgs {
		if err := killCgroup(cg); err != nil {
			return err
		}
	}
	return nil
}

// mutate runs f on a node under the lab lock.
func (l *Lab) mutate(ctx context.Context, verb, node string, f func(n Node) error) error {
	n, err := l.Node(node)
	if err != nil {
		return fmt.Errorf("lab %s: %w", verb, err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab %s: %w", verb, &PrereqError{NotRoot: true})
	}
	unlock, err := Flock(ctx, LockPath, l.progress)
	if err != nil {
		return fmt.Errorf("lab %s: %w", verb, err)
	}
	defer unlock()
	if err := f(n); err != nil {
		return fmt.Errorf("lab %s %s: %w", verb, node, err)
	}
	return nil
}

// Crash simulates a power loss of the node: cable pulled, PID 1 killed. Its
// disk (the overlay) stays as it was; Start boots it again.
func (l *Lab) Crash(ctx context.Context, node string) error {
	return l.mutate(ctx, "crash", node, func(n Node) error {
		if _, ok := nspawnPID(n.Name); !ok {
			return errNotRunning
		}
		if err := crashNode(ctx, n.Name); err != nil {
			return err
		}
		fmt.Fprintf(l.progress, "%s crashed (cable pulled, PID 1 killed)\n", n.Name)
		return nil
	})
}

// Start boots a stopped or crashed node with its cable plugged in and waits
// until it accepts SSH. A running node is left alone.
func (l *Lab) Start(ctx context.Context, node string) error {
	return l.mutate(ctx, "start", node, func(n Node) error {
		if _, ok := nspawnPID(n.Name); ok {
			fmt.Fprintf(l.progress, "%s is already running\n", n.Name)
			return nil
		}
		t := time.Now()
		if err := l.startNodes(ctx, []Node{n}); err != nil {
			return err
		}
		fmt.Fprintf(l.progress, "%s booted, SSH ready after %s\n", n.Name, time.Since(t).Round(100*time.Millisecond))
		return nil
	})
}

// Partition cuts the node's link: it keeps running but reaches nothing (and
// nothing reaches it) until Heal.
func (l *Lab) Partition(ctx context.Context, node string) error {
	return l.mutate(ctx, "partition", node, func(n Node) error {
		if _, ok := nspawnPID(n.Name); !ok {
			return errNotRunning
		}
		if err := setLink(ctx, n.Name, false); err != nil {
			return err
		}
		fmt.Fprintf(l.progress, "%s partitioned (link down; heal with: debship lab heal %s)\n", n.Name, n.Name)
		return nil
	})
}

// Heal plugs the node's link back in.
func (l *Lab) Heal(ctx context.Context, node string) error {
	return l.mutate(ctx, "heal", node, func(n Node) error {
		if !linkExists(vethName(n.Name)) {
			return fmt.Errorf("its link does not exist (is the lab up?)")
		}
		if err := setLink(ctx, n.Name, true); err != nil {
			return err
		}
		fmt.Fprintf(l.progress, "%s healed (link up)\n", n.Name)
		return nil
	})
}

// Exec runs a command inside a running node without the network (nsenter
// into all its namespaces), e.g. to look at a partitioned node. It returns
// the combined output.
func (l *Lab) Exec(ctx context.Context, node string, command ...string) ([]byte, error) {
	n, err := l.Node(node)
	if err != nil {
		return nil, fmt.Errorf("lab exec: %w", err)
	}
	pid, ok := initPID(n.Name)
	if !ok {
		return nil, fmt.Errorf("lab exec %s: %w", n.Name, errNotRunning)
	}
	args := append([]string{"-t", fmt.Sprint(pid), "-a", "--"}, command...)
	out, err := exec.CommandContext(ctx, "nsenter", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("lab exec %s: %v: %w", n.Name, command, err)
	}
	return out, nil
}
