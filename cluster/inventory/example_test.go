package inventory

import "testing"

// The examples load as they are, and show what their comments say: the
// DigitalOcean one its reserved IP and fence agent with the API token of
// [floating-ip.digitalocean], the libvirt one IPaddr2 and fence_virsh with
// its password from a file.
func TestExampleInventories(t *testing.T) {
	t.Run("cluster.toml", func(t *testing.T) {
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
		f := inv.Fencing
		if err := inv.RequireFencing(); err != nil || inv.FenceAgent() != FenceDigitalOcean || f.PasswordFile != "" || f.AcceptNoFencing {
			t.Errorf("example fencing: %+v, %v", f, err)
		}
		if d, section := inv.DOConfig(); section != "floating-ip.digitalocean" || d.TokenEnv != "DIGITALOCEAN_TOKEN" {
			t.Errorf("the fence agent's token: %+v from %q", d, section)
		}
		for _, n := range inv.Members() {
			if f.Droplets[n.Name] <= 0 {
				t.Errorf("node %s has no droplet id", n.Name)
			}
		}
		if w := inv.Warnings(); len(w) != 0 {
			t.Errorf("warnings: %q", w)
		}
	})
	t.Run("cluster-libvirt.toml", func(t *testing.T) {
		inv, err := Load("../../examples/cluster-libvirt.toml")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := inv.Tiebreaker(); len(inv.Members()) != 2 || ok || inv.Storage != nil || inv.FloatingIP.Provider != ProviderIPaddr2 {
			t.Errorf("unexpected example: %+v", inv)
		}
		f := inv.Fencing
		if err := inv.RequireFencing(); err != nil || inv.FenceAgent() != "fence_virsh" || f.PasswordFile == "" || f.Options["ip"] == "" {
			t.Errorf("example fencing: %+v, %v", f, err)
		}
		if d, _ := inv.DOConfig(); d != nil {
			t.Errorf("the libvirt example uses DigitalOcean: %+v", d)
		}
		if w := inv.Warnings(); len(w) != 0 {
			t.Errorf("warnings: %q", w)
		}
	})
}
