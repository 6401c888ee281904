package lab

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gitlab.com/debship/debship/internal/rootfs"
	"golang.org/x/crypto/ssh"
)

// Node is one lab host.
type Node struct {
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
	Role    string     `json:"role,omitempty"` // "tiebreaker" for node3
}

// nodePaths is a node's directory below <lab dir>/nodes: the overlay layer
// whose merged root nspawn boots, the host directory behind /bricks, and the
// console log.
type nodePaths struct{ rootfs.Layer }

func (n nodePaths) Bricks() string  { return filepath.Join(n.Dir, "bricks") }
func (n nodePaths) Console() string { return filepath.Join(n.Dir, "console.log") }

// identityMark is written once the node's identity is in its layer.
func (n nodePaths) identityMark() string { return filepath.Join(n.Dir, "identity") }

func (n nodePaths) hasIdentity() bool {
	_, err := os.Stat(n.identityMark())
	return err == nil
}

// mountRoot mounts the node's overlay over the base root unless it is.
func (n nodePaths) mountRoot(base string) error {
	if err := os.MkdirAll(n.Bricks(), 0o755); err != nil {
		return fmt.Errorf("node dirs: %w", err)
	}
	return n.Mount(mountSource, base)
}

// identity is what makes a node itself; written into its overlay before
// its first boot.
type identity struct {
	Node      Node
	HostKey   string     // private key file on the host (stable across rebuilds)
	ClientPub []byte     // authorized for the admin user and root
	Signer    ssh.Signer // the host key, for known_hosts
}

func (n nodePaths) writeIdentity(id identity) error {
	r := n.Root()
	if err := writeFile(filepath.Join(r, "etc/hostname"), []byte(id.Node.Name+"\n"), 0o644); err != nil {
		return err
	}
	if err := renderTo(filepath.Join(r, "etc/hosts"), 0o644, "lab/hosts", id.Node); err != nil {
		return err
	}
	if err := n.ensureMachineID(); err != nil {
		return err
	}
	key, err := os.ReadFile(id.HostKey)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(r, "etc/ssh/ssh_host_ed25519_key"), key, 0o600); err != nil {
		return err
	}
	pub := ssh.MarshalAuthorizedKey(id.Signer.PublicKey())
	if err := writeFile(filepath.Join(r, "etc/ssh/ssh_host_ed25519_key.pub"), pub, 0o644); err != nil {
		return err
	}
	// root by key is for the lab only (REPORT §2); cluster apply may forbid it.
	if err := authorize(r, "/root", 0, 0, id.ClientPub); err != nil {
		return err
	}
	uid, gid, err := lookupUser(r, AdminUser)
	if err != nil {
		return err
	}
	if err := authorize(r, "/home/"+AdminUser, uid, gid, id.ClientPub); err != nil {
		return err
	}
	return writeFile(n.identityMark(), []byte(id.Node.Name+"\n"), 0o644)
}

// ensureMachineID gives each node its own machine-id (the base has none),
// which journald, D-Bus and corosync's nodeid logic expect.
func (n nodePaths) ensureMachineID() error {
	p := filepath.Join(n.Root(), "etc/machine-id")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) == 32 {
		return nil
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	return writeFile(p, []byte(hex.EncodeToString(id)+"\n"), 0o444)
}

func authorize(root, home string, uid, gid int, pub []byte) error {
	dir := filepath.Join(root, home, ".ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f := filepath.Join(dir, "authorized_keys")
	if err := writeFile(f, pub, 0o600); err != nil {
		return err
	}
	for _, p := range []string{dir, f} {
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// lookupUser reads uid and gid from the node's /etc/passwd (not the host's).
func lookupUser(root, name string) (int, int, error) {
	f, err := os.Open(filepath.Join(root, "etc/passwd"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) >= 4 && p[0] == name {
			uid, err1 := strconv.Atoi(p[2])
			gid, err2 := strconv.Atoi(p[3])
			if err1 == nil && err2 == nil {
				return uid, gid, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("user %s not found in the node's /etc/passwd", name)
}
