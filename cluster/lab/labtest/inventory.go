package labtest

import (
	"path/filepath"
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/lab"
)

// Inventory is the lab's inventory with what tests need on top, written to
// a temp file and loaded again: the host may SSH without ufw's rate limit
// (the tests open many connections), and gluster gives up on a crashed node
// after 5 s.
func Inventory(t *testing.T, l *lab.Lab) (*inventory.Inventory, string) {
	t.Helper()
	inv, err := inventory.Load(l.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	inv.Hardening = &inventory.Hardening{TrustedSources: []string{l.HostAddress().String()}}
	inv.Storage.PingTimeout = 5
	p := filepath.Join(t.TempDir(), "cluster.toml")
	if err := inv.Write(p); err != nil {
		t.Fatal(err)
	}
	if inv, err = inventory.Load(p); err != nil {
		t.Fatal(err)
	}
	return inv, p
}
