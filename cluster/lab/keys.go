package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ensureKey returns the ed25519 key in path (OpenSSH format, with path.pub
// next to it), creating it once. Kept across `lab down`, so host keys stay
// stable and known_hosts entries stay valid.
func ensureKey(path, comment string) (ssh.Signer, error) {
	if b, err := os.ReadFile(path); err == nil {
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		if _, err := os.Stat(path + ".pub"); err != nil {
			if err := writeFile(path+".pub", ssh.MarshalAuthorizedKey(s.PublicKey()), 0o644); err != nil {
				return nil, fmt.Errorf("key %s: %w", path, err)
			}
		}
		return s, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + " " + comment + "\n"
	if err := writeFile(path+".pub", []byte(pub), 0o644); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if err := writeFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return s, nil
}

// knownHostsLine is one known_hosts entry for a node (name and address).
func knownHostsLine(names []string, key ssh.PublicKey) string {
	return knownhosts.Line(names, key) + "\n"
}

// handOver gives the user who ran `sudo debship lab up` the lab's key, its
// known_hosts and inventory, so that the README's walkthrough (`debship lab
// ssh`, `debship cluster plan -i …`) works without sudo: only booting,
// crashing and partitioning nodes need root. The key opens only the lab's
// own nodes. Without sudo (root itself, or CI) nothing changes.
func (l *Lab) handOver() error {
	uid, gid, ok := sudoUser()
	if !ok {
		return nil
	}
	for _, p := range []string{l.KeyPath(), l.KeyPath() + ".pub", l.KnownHostsPath(), l.InventoryPath()} {
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("give %s to the user who ran sudo (uid %d): %w", p, uid, err)
		}
	}
	return nil
}

// sudoUser is the invoking user of a root process started by sudo.
func sudoUser() (uid, gid int, ok bool) {
	if os.Geteuid() != 0 {
		return 0, 0, false
	}
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || uid == 0 {
		return 0, 0, false
	}
	return uid, gid, true
}
