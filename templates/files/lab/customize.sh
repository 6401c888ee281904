#!/bin/sh
# Runs once inside the freshly installed base root (chroot), before it is
# cached. Every lab node is an overlay over this root, so only settings that
# are the same on all nodes belong here; per-node identity (hostname, host
# key, authorized keys, machine-id) is written at `lab up`.
set -eu

# Installed but not enabled: `debship cluster apply` enables what it needs.
for u in {{join .Disabled " "}}; do
	systemctl disable "$u" >/dev/null 2>&1 || true
done
# Useless or harmful in a container with no route out.
for u in {{join .Masked " "}}; do
	systemctl mask "$u" >/dev/null 2>&1 || true
done
systemctl enable ssh >/dev/null

# A non-root admin with passwordless sudo, as on a fresh cloud VM. Its
# authorized key is installed per node.
id {{.Admin}} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {{.Admin}}
passwd --lock {{.Admin}} >/dev/null
printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' {{.Admin}} > /etc/sudoers.d/90-{{.Admin}}
chmod 0440 /etc/sudoers.d/90-{{.Admin}}
visudo -cq

# Host keys are per node and stable across rebuilds (written at `lab up`);
# only the ed25519 key exists, so sshd is told not to look for the others.
rm -f /etc/ssh/ssh_host_*
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\n' > /etc/ssh/sshd_config.d/debship-lab-hostkey.conf

# systemd creates a unique machine-id per node when this is empty.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

# The package lists stay: the nodes have no route to a mirror, and apt must
# still resolve "already installed" for the cluster's base phase.
apt-get clean
