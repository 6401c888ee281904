// Package lab runs a small Debian HA cluster on one machine: each node is a
// Debian 12 root booted with systemd-nspawn (systemd as PID 1), an overlayfs
// layer over one cached base root, in its own network namespace with a veth
// on a private bridge. Cluster setup, failover and deploy tests run against
// real sshd, corosync, pacemaker and glusterd there, and users rehearse
// deploys before touching production.
//
// The recipe follows the feasibility study (research/lab/REPORT.md): a
// two-stage debootstrap, an overlay per node, a netns per node, and a handful
// of nspawn workarounds for hosts without systemd, all in nspawn.go.
//
// One lab per machine: names and the subnet are fixed per lab, so every
// mutation holds an flock (LockPath), and Up first removes whatever a killed
// earlier run left behind.
package lab
