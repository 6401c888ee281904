#!/bin/bash
# Times the lab: a cold base-root build (into a scratch cache, so the real
# one in /var/cache/debship/lab is untouched), a warm `lab up`, `lab down`,
# the memory of each idle node, and an applied cluster serving the example
# app from scratch (lab up, cluster apply) against from a snapshot of it
# (lab up --snapshot). Not a test. Needs root and
# apt-get install debootstrap systemd-container iproute2 openssh-client
# python3-venv curl.
#   COLD=0 skips the cold build (1-4 min) and uses the real cache.
#   NODES=3 boots three nodes.  RUNS=N repeats warm up/down N times.
#   APPLIED=0 skips the applied cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
COLD=${COLD:-1}
NODES=${NODES:-2}
RUNS=${RUNS:-3}
APPLIED=${APPLIED:-1}
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

# serving: the floating IP and every app node answer /healthz.
serving() {
	local n
	curl -fsS -m 2 "http://10.231.0.100:8080/healthz" >/dev/null 2>&1 || return 1
	for n in 11 12; do curl -fsS -m 2 "http://10.231.0.$n:8080/healthz" >/dev/null 2>&1 || return 1; done
}
wait_serving() {
	local _
	for _ in $(seq 600); do serving && return 0; sleep 0.2; done
	echo "bench: the cluster did not serve within 2 min" >&2; exit 1
}
if [ "$APPLIED" = 1 ]; then
	cp -r examples/hello-web "$dir/src"
	deb=$("$DEBSHIP" build "$dir/src" --mode cluster --target debian-13 --output "$dir/dist" --no-index 2>"$dir/build.log" | tail -n 1)
	for i in $(seq "$RUNS"); do
		s=$(now); up
		"$DEBSHIP" cluster apply -i "$dir/lab/cluster.toml" --package "$deb" >"$dir/apply.log" 2>&1 ||
			{ tail -30 "$dir/apply.log" >&2; exit 1; }
		wait_serving
		echo "applied from scratch #$i:  $(secs "$s") s   ($NODES nodes: lab up, cluster apply --package, serving)"
		"$DEBSHIP" lab snapshot save --dir "$dir/lab" --force applied 2>"$dir/save.log" || { cat "$dir/save.log" >&2; exit 1; }
		s=$(now)
		"$DEBSHIP" lab up --dir "$dir/lab" --cache "$cache" --snapshot applied >/dev/null 2>"$dir/up.log" ||
			{ cat "$dir/up.log" >&2; exit 1; }
		wait_serving
		echo "applied from snapshot #$i: $(secs "$s") s   (lab up --snapshot, serving)"
		"$DEBSHIP" lab down --dir "$dir/lab" 2>/dev/null
	done
fi
