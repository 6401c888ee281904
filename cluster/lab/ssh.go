package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshProbe logs into a node as the admin user with strict host-key checking
// against the lab's known_hosts: the same path a user and `cluster apply`
// take, so "ready" means really reachable.
func (l *Lab) sshProbe(ctx context.Context, n Node, timeout time.Duration) error {
	key, err := os.ReadFile(l.KeyPath())
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return err
	}
	hostKeys, err := knownhosts.New(l.KnownHostsPath())
	if err != nil {
		return err
	}
	cfg := &ssh.ClientConfig{
		User:            AdminUser,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         timeout,
	}
	addr := net.JoinHostPort(n.Address.String(), "22")
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return err
	}
	return ssh.NewClient(c, chans, reqs).Close()
}

// waitSSH waits until the node accepts the admin user's key.
func (l *Lab) waitSSH(ctx context.Context, n Node, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		if err = l.sshProbe(ctx, n, 2*time.Second); err == nil {
			return nil
		}
		if _, running := nspawnPID(n.Name); !running {
			return fmt.Errorf("%s stopped while booting; see %s", n.Name, l.paths(n.Name).Console())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: no SSH login after %s (%v); see %s", n.Name, limit, err, l.paths(n.Name).Console())
}

// SSHArgs is the OpenSSH command line for a shell or a command on a node as
// user: the lab key, and strict host-key checking against the lab's
// known_hosts.
func (l *Lab) SSHArgs(node, user string, command []string) ([]string, error) {
	n, err := l.Node(node)
	if err != nil {
		return nil, err
	}
	if user == "" {
		user = AdminUser
	}
	args := []string{"ssh",
		"-i", l.KeyPath(),
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + l.KnownHostsPath(),
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=5",
		"-p", strconv.Itoa(22),
		// "--" before the destination: OpenSSH parses options after the
		// host name too, and the command's own flags must stay its own.
		"--", user + "@" + n.Address.String(),
	}
	return append(args, command...), nil
}

// ExecSSH replaces the current process with ssh to the node (see SSHArgs).
// It returns only on error.
func (l *Lab) ExecSSH(node, user string, command []string) error {
	args, err := l.SSHArgs(node, user, command)
	if err != nil {
		return err
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return fmt.Errorf("lab ssh: the ssh client is missing; install with: apt-get install openssh-client")
	}
	return syscall.Exec(path, args, os.Environ())
}
