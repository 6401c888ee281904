// Package lab runs a small Debian HA cluster on one machine: each node is a
// Debian root (13 by default, or 12) booted with systemd-nspawn (systemd as
// PID 1), an overlayfs layer over one cached base root, in its own network
// namespace with a veth on a private bridge. Cluster setup, failover and
// deploy tests run against real sshd, corosync, pacemaker and glusterd
// there, and users rehearse deploys before touching production.
//
// The base root is built in two stages: debootstrap installs a minbase only,
// because its resolver cannot pick among virtual packages, and apt-get in
// the root installs the rest (base.go). One overlay per node makes a node
// cost seconds and megabytes instead of a root of its own; one network
// namespace per node lets a cable be pulled (partition, crash) without
// touching the host's network. nspawn needs a handful of workarounds on a
// host whose PID 1 is not systemd, all in nspawn.go.
//
// One lab per machine: names and the subnet are fixed per lab, so every
// mutation holds an flock (LockPath), and Up first removes whatever a killed
// earlier run left behind.
package lab
