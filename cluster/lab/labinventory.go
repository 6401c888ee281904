package lab

import (
	"fmt"

	"gitlab.com/debship/debship/cluster/inventory"
)

// Inventory is the cluster.toml `lab up` writes: the same format and
// meaning as for real servers, so `debship cluster apply -i` works against
// the lab unchanged. The example app (hello-web) is what the tests deploy.
func (l *Lab) Inventory() *inventory.Inventory {
	inv := &inventory.Inventory{
		Name: "lab",
		SSH: inventory.SSH{
			User:       AdminUser,
			Port:       22,
			Key:        l.KeyPath(),
			KnownHosts: l.KnownHostsPath(),
		},
		FloatingIP: inventory.FloatingIP{
			Address:   l.FloatingIP().String(),
			Interface: NodeNIC,
			Provider:  inventory.ProviderIPaddr2,
		},
		App: inventory.App{Package: "hello-web", Port: 8080, HealthPath: "/healthz"},
		// /bricks is a host directory bind-mounted into each node.
		Storage: &inventory.Storage{Volume: "shared", Mount: "/srv/shared", Brick: "/bricks/shared",
			// Without the tie-breaker the lab rehearses replica 2 on purpose.
			AcceptSplitBrainRisk: len(l.Nodes) < 3},
		// The nodes share one L2 segment with nothing else on it.
		Network: inventory.Network{Type: inventory.NetworkNone},
		// fence_dummy keeps pacemaker's fencing semantics without a power
		// switch; the inventory allows it only with lab = true.
		Fencing: &inventory.Fencing{Agent: inventory.FenceDummy},
		Lab:     true,
	}
	for _, n := range l.Nodes {
		inv.Nodes = append(inv.Nodes, inventory.Node{
			Name:           n.Name,
			Address:        n.Address.String(),
			PrivateAddress: n.Address.String(),
			Role:           n.Role,
		})
	}
	return inv
}

func (l *Lab) writeInventory() error {
	inv := l.Inventory()
	if err := inv.Validate(); err != nil {
		return fmt.Errorf("lab inventory: %w", err)
	}
	return inv.Write(l.InventoryPath())
}
