package labtest

import (
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/inventory/inventorytest"
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
	inv = inventorytest.Reload(t, inv)
	return inv, inv.Path
}
