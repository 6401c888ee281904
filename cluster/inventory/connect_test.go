package inventory

import (
	"path/filepath"
	"testing"
)

// A CI job logs in with the key and known_hosts of its File variables,
// whatever the committed inventory names, on every node.
func TestSSHConfigOverrides(t *testing.T) {
	p := writeInventory(t, validInventory)
	inv, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	cases := []struct {
		name       string
		o          ConnectOptions
		key1, key2 string // node1 (the [ssh] key), node2 (its own key)
		knownHosts string
	}{
		{"inventory", ConnectOptions{}, filepath.Join(dir, "id_ed25519"), "/etc/debship/node2.key", filepath.Join(dir, "known_hosts")},
		{"flags", ConnectOptions{Key: "/builds/x.tmp/DEBSHIP_SSH_KEY", KnownHosts: "/builds/x.tmp/DEBSHIP_KNOWN_HOSTS"},
			"/builds/x.tmp/DEBSHIP_SSH_KEY", "/builds/x.tmp/DEBSHIP_SSH_KEY", "/builds/x.tmp/DEBSHIP_KNOWN_HOSTS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n1, _ := inv.Node("node1")
			n2, _ := inv.Node("node2")
			a, b := inv.SSHConfig(n1, c.o), inv.SSHConfig(n2, c.o)
			if a.Key != c.key1 || b.Key != c.key2 {
				t.Errorf("keys %s, %s; want %s, %s", a.Key, b.Key, c.key1, c.key2)
			}
			if a.KnownHosts != c.knownHosts || b.KnownHosts != c.knownHosts {
				t.Errorf("known_hosts %s, %s; want %s", a.KnownHosts, b.KnownHosts, c.knownHosts)
			}
			// The user and port stay the inventory's.
			if b.User != "deploy" || b.Port != 2222 || a.User != "admin" {
				t.Errorf("node2 %s:%d, node1 %s", b.User, b.Port, a.User)
			}
		})
	}
}
