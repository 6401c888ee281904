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
	// The example shows fencing as it should be: a real agent, its
	// password from a file.
	if err := inv.RequireFencing(); err != nil || inv.FenceAgent() != "fence_virsh" || inv.Fencing.PasswordFile == "" || inv.Fencing.AcceptNoFencing {
		t.Errorf("example fencing: %+v, %v", inv.Fencing, err)
	}
	if _, ok := inv.Tiebreaker(); !ok {
		t.Error("the example has no tie-breaker")
	}
}
