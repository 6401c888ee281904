#!/bin/bash
# Times the lab: a cold base-root build (into a scratch cache, so the real
# one in /var/cache/debship/lab is untouched), a warm `lab up`, `lab down`,
# and the memory of each idle node. Not a test. Needs root and
# apt-get install debootstrap systemd-container iproute2 openssh-client.
#   COLD=0 skips the cold build (1-4 min) and uses the real cache.
#   NODES=3 boots three nodes.  RUNS=N repeats warm up/down N times.
set -euo pipefail
cd "$(dirname "$0")/.."
COLD=${COLD:-1}
NODES=${NODES:-2}
RUNS=${RUNS:-3}
DEBSHIP=${DEBSHIP:-$PWD/bin/debship}
[ -x "$DEBSHIP" ] || make build >/dev/null
[ "$(id -u)" = 0 ] || { echo "bench: the lab needs root" >&2; exit 1; }

dir=$(mktemp -d /var/tmp/debship-lab-bench.XXXXXX)
cache=/var/cache/debship/lab
[ "$COLD" = 1 ] && cache=$dir/cache
trap '"$DEBSHIP" lab down --dir "$dir/lab" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
up() { "$DEBSHIP" lab up --dir "$dir/lab" --cache "$cache" --nodes "$NODES" >/dev/null 2>"$dir/up.log" ||
	{ cat "$dir/up.log" >&2; exit 1; }; }

"$DEBSHIP" lab down --dir "$dir/lab" >/dev/null 2>&1 # one lab per machine

if [ "$COLD" = 1 ]; then
	s=$(now); up; echo "cold build + up:  $(secs "$s") s   (base root $(du -sh "$cache"/base-* | cut -f1), empty .deb cache)"
	s=$(now); "$DEBSHIP" lab down --dir "$dir/lab" 2>/dev/null; echo "down:             $(secs "$s") s"
fi
for i in $(seq "$RUNS"); do
	s=$(now); up; echo "warm up #$i:       $(secs "$s") s   ($NODES nodes, SSH ready)"
	if [ "$i" = 1 ]; then
		sleep 5 # let the nodes settle
		echo "memory per node (PSS of all its processes, idle, no cluster daemons started):"
		"$DEBSHIP" lab status --dir "$dir/lab" | awk '$1 ~ /^node/ {print "  " $1 ": " $(NF-1) " " $NF}'
	fi
	s=$(now); "$DEBSHIP" lab down --dir "$dir/lab" 2>/dev/null; echo "down #$i:          $(secs "$s") s"
done
