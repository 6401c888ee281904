package setup

import (
	"gitlab.com/debship/debship/cluster/inventory"
)

// BasePackages are the seed's common tools in today's Debian names.
// apt-transport-https (folded into apt 1.5) and python-software-properties
// (gone) are no more.
var BasePackages = []string{
	"sudo", "git", "htop", "iftop", "iotop", "atop", "debian-goodies",
	"unattended-upgrades", "ca-certificates", "curl",
}

func allPhases(inv *inventory.Inventory, o Options) []Phase {
	return []Phase{
		basePhase(inv),
		hardenPhase(inv),
		networkPhase(inv),
		haPhase(inv, o),
		storagePhase(inv),
		appPhase(inv, o),
	}
}

func basePhase(inv *inventory.Inventory) Phase {
	steps := []Step{packagesStep("packages", func(*Target) []string { return BasePackages })}
	if inventory.Enabled(inv.HardeningOptions().UnattendedUpgrades) {
		steps = append(steps,
			fileStep("unattended-upgrades on", "/etc/apt/apt.conf.d/20auto-upgrades", 0o644,
				templateFile("20auto-upgrades", func(*Target) any { return nil }), nil),
			fileStep("unattended-upgrades: security only", "/etc/apt/apt.conf.d/52debship-unattended-upgrades", 0o644,
				templateFile("52debship-unattended-upgrades", func(t *Target) any { return map[string]string{"App": t.Inv().App.Package} }), nil),
		)
	}
	return Phase{Name: PhaseBase, Stages: []Stage{{Nodes: inv.Nodes, Steps: steps}}}
}
