# debship lab: start systemd-nspawn in the node's own cgroup.
# sh -c <this> debship-lab-launch systemd-nspawn ARGS...
# DEBSHIP_LAB_CGROUPS: the cgroup.procs files of the node's cgroups.
# nspawn --keep-unit runs the container in "<our cgroup>/payload", so we move
# there first; otherwise all nodes would share the caller's cgroup.
for f in $DEBSHIP_LAB_CGROUPS; do
	echo $$ > "$f" || exit 1
done
unset DEBSHIP_LAB_CGROUPS
exec "$@"
