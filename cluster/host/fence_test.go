package host

import (
	"testing"

	"gitlab.com/debship/debship/internal/debian"
)

func TestFenceAgentPackage(t *testing.T) {
	trixie, _ := debian.BySuite("trixie")
	bookworm, _ := debian.BySuite("bookworm")
	for _, tt := range []struct {
		release debian.Release
		agent   string
		want    string
	}{
		{trixie, "fence_virsh", "fence-agents-virsh"},
		{trixie, "fence_dummy", "fence-agents-dummy"},
		{trixie, "fence_digitalocean", ""},
		{trixie, "fence_ipmilan", "fence-agents-ipmilan"},
		{trixie, "fence_ilo4", "fence-agents-ipmilan"},
		{trixie, "fence_apc_snmp", "fence-agents-apc-snmp"},
		{trixie, "fence_vmware_rest", "fence-agents-vmware-rest"},
		{trixie, "digitalocean", ""},
		{trixie, "fence_", ""},
		{bookworm, "fence_virsh", "fence-agents"},
		{bookworm, "fence_ilo4", "fence-agents"},
		{bookworm, "digitalocean", ""},
	} {
		if got := FenceAgentPackage(tt.release, tt.agent); got != tt.want {
			t.Errorf("FenceAgentPackage(%s, %s) = %q, want %q", tt.release.Suite, tt.agent, got, tt.want)
		}
	}
}
