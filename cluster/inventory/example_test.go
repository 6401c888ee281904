package inventory

import "testing"

// TestExampleInventory keeps examples/cluster.toml valid.
func TestExampleInventory(t *testing.T) {
	inv, err := Load("../../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Members()) != 2 || inv.FloatingIP.Provider != ProviderDigitalOcean || inv.Network.Type != NetworkWireGuard {
		t.Errorf("unexpected example: %+v", inv)
	}
	if _, ok := inv.Tiebreaker(); !ok {
		t.Error("the example has no tie-breaker")
	}
}
