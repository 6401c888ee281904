# shellcheck shell=sh
# debship lab: run a command in a cgroup of its own.
#   sh -c <this> debship-lab-exec COMMAND ARGS...
# DEBSHIP_LAB_CGROUPS: the cgroup.procs files to join, one per hierarchy.
# Go cannot run code between fork and exec, so this shell joins the cgroups
# and then becomes the command. Why the lab needs it: see cluster/lab/nspawn.go
# (nspawn --keep-unit) and base.go (killing a build that was interrupted).
for f in $DEBSHIP_LAB_CGROUPS; do
	echo $$ > "$f" || exit 1
done
unset DEBSHIP_LAB_CGROUPS
exec "$@"
