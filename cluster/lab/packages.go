package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/templates"
)

// Packages go into the base root in the second stage (apt-get inside the
// chroot). The first group makes a bootable, reachable node; the second is
// what the cluster phases configure, installed but left disabled so that
// `cluster apply` does the real work; the third is there because the nodes
// cannot download anything later.
var Packages = []string{
	// a booting, reachable Debian node
	"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "ca-certificates",
	"iproute2", "iputils-ping", "iputils-arping", "procps", "psmisc", "less", "kmod",
	"cron", "curl", "python3", "python3-venv",
	// the cluster stack, hardening and private network
	"corosync", "pacemaker", "pcs", "crmsh", "resource-agents",
	"corosync-qnetd", "corosync-qdevice",
	"glusterfs-server", "glusterfs-client", "fuse3", "attr",
	"wireguard-tools", "tinc",
	// wg-quick falls back to it where the kernel has no WireGuard module
	// (as on the CI machines); /dev/net/tun exists in every node
	"wireguard-go",
	"ufw", "fail2ban", "python3-systemd", "rkhunter", "unattended-upgrades",
	// the cluster base phase's tools: the nodes have no route to a mirror, so
	// apt must find them installed already
	"git", "htop", "iftop", "iotop", "atop", "debian-goodies",
}

// fenceAgent is the lab's only fence agent (the lab inventory's): its
// package is fence-agents on Debian 12 and fence-agents-dummy from 13 on.
const fenceAgent = inventory.FenceDummy

// packages is Packages with the release's fence agent package.
func packages(r debian.Release) []string {
	return append(append([]string(nil), Packages...), host.FenceAgentPackage(r, fenceAgent))
}

// DisabledUnits are installed but not started at boot: the cluster phases
// enable what they need (several packages enable their daemon on install).
var DisabledUnits = []string{
	"corosync", "pacemaker", "pcsd", "pcsd-ruby", "corosync-qnetd", "corosync-qdevice",
	"glusterd", "glustereventsd", "fail2ban", "tinc", "logd",
}

// MaskedUnits are useless or harmful in a container without a route out: a
// getty on a read-only console, time sync, apt timers that would fail to
// reach the mirror, and atop's process accounting (not allowed in a
// container); each would leave the node "degraded".
var MaskedUnits = []string{
	"getty@tty1.service", "console-getty.service", "systemd-timesyncd.service",
	"systemd-networkd-wait-online.service", "apt-daily.timer",
	"apt-daily-upgrade.timer", "e2scrub_reap.service", "atopacct.service",
}

// customizeTemplate configures the base root once, inside the chroot.
const customizeTemplate = "lab/customize.sh"

// baseKey names the cached base root: a hash of everything that goes into
// it, so a changed package list or image script gives a new base and the
// old one is rebuilt, never patched.
func baseKey(r debian.Release) (string, error) {
	script, err := templates.Raw(customizeTemplate)
	if err != nil {
		return "", fmt.Errorf("base key: %w", err)
	}
	pk := packages(r)
	sort.Strings(pk)
	h := sha256.New()
	fmt.Fprintf(h, "suite %s\npackages %s\ndisabled %s\nmasked %s\nadmin %s\n",
		r.Suite, strings.Join(pk, " "), strings.Join(DisabledUnits, " "),
		strings.Join(MaskedUnits, " "), AdminUser)
	h.Write(script)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
