package host

import (
	"strings"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/internal/debian"
)

// fencePackageExceptions are the agents of Debian 13's fence-agents whose
// package is not "fence-agents-" plus the agent's name with dashes: several
// agents are symlinks to another (fence_ilo3 is fence_ipmilan) and ship in
// its package. Read from trixie's main/Contents-all (usr/sbin/fence_*),
// 87 agents in 76 packages.
var fencePackageExceptions = map[string]string{
	"fence_epsr2":          "fence-agents-eps",
	"fence_evacuate":       "fence-agents-compute",
	"fence_idrac":          "fence-agents-ipmilan",
	"fence_ilo":            "fence-agents-ilo2",
	"fence_ilo3":           "fence-agents-ipmilan",
	"fence_ilo3_ssh":       "fence-agents-ilo-ssh",
	"fence_ilo4":           "fence-agents-ipmilan",
	"fence_ilo4_ssh":       "fence-agents-ilo-ssh",
	"fence_ilo5":           "fence-agents-ipmilan",
	"fence_ilo5_ssh":       "fence-agents-ilo-ssh",
	"fence_imm":            "fence-agents-ipmilan",
	"fence_ipmilanplus":    "fence-agents-ipmilan",
	"fence_lindypdu":       "fence-agents-lindy-pdu",
	"fence_tripplite_snmp": "fence-agents-apc-snmp",
	"fence_zvmip":          "fence-agents-zvm",
}

// FenceAgentPackage is the Debian package that ships a fence-agents agent
// (fence_virsh, …) on a release, "" for an agent fence-agents does not
// ship (debship's own). Debian 12 has them all in fence-agents; Debian 13
// split it into one package per agent and left fence-agents as a
// transitional package that pulls in every agent and their dependencies.
func FenceAgentPackage(r debian.Release, agent string) string {
	name, ok := strings.CutPrefix(agent, "fence_")
	// debship's own agent is installed by setup from its template.
	if !ok || name == "" || agent == inventory.FenceDigitalOcean {
		return ""
	}
	if r.Version < 13 {
		return "fence-agents"
	}
	if p, ok := fencePackageExceptions[agent]; ok {
		return p
	}
	return "fence-agents-" + strings.ReplaceAll(name, "_", "-")
}
