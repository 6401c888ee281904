// Package cluster holds no code; its sub-packages set up, inspect and
// deploy to a small Debian HA cluster (corosync/pacemaker, a floating IP,
// GlusterFS) described by one inventory file, cluster.toml:
//
//   - inventory: the cluster's description (Load, validation, defaults)
//     and SSH connections to its nodes.
//   - transport: running commands and uploading files on a node (SSH, or
//     locally).
//   - host: the one typed layer of commands on a node: apt/dpkg, systemd,
//     pacemaker, gluster.
//   - setup: plan and apply the cluster's phases (base, harden, network,
//     ha, storage, app).
//   - status: read the cluster's state; Status.Healthy gates a deploy.
//   - deploy: roll a new .deb across the nodes without dropping requests.
//   - lab: a cluster of systemd-nspawn containers on one machine, for
//     trying things and for the integration tests.
package cluster
