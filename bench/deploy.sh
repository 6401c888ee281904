#!/bin/bash
# Measures a rolling deploy under load on the lab, debship's against the
# naive loop, and prints a markdown table. Not a test. Needs root, the lab's
# packages (see bench/lab.sh) and Go.
#
#   lab up; cluster apply with hello-web 1.4;
#   (a) load + `debship deploy` 1.5;
#   (b) load + for the passive node, then the other:
#       pcs node standby N --wait; dpkg -i 1.6.deb; pcs node unstandby N --wait
#   lab down.
#
# The load (bench/loadgen, i.e. internal/loadgen) is four clients at
# once, each sending RATE req/s to the floating IP with a 2 s timeout, from
# 3 s before the deploy until 3 s after it and for at least MIN_LOAD
# seconds: "new" opens a connection per request, no retries; "pool" keeps
# up to 4 connections open and POSTs (never re-sent); "retry" is Go's
# default client (GET, up to 4 connections, a request that fails on a
# reused connection is sent once more); "urllib3" is Python's urllib3 with
# its defaults (GET, a pool of 4, up to 3 retries after a connection
# error, a connection closed before the answer or a read timeout; the 2 s
# are per attempt), run by /usr/bin/python3 (Debian's python3-urllib3).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-50}
# The lab's Debian release and the build target that matches it.
RELEASE=${RELEASE:-trixie}
case $RELEASE in trixie) TARGET=debian-13 ;; bookworm) TARGET=debian-12 ;; *) echo "bench: RELEASE is trixie or bookworm" >&2; exit 2 ;; esac
MIN_LOAD=${MIN_LOAD:-45}
URL=http://10.231.0.100:8080/
DEBSHIP=${DEBSHIP:-$PWD/bin/debship}
LAB=/var/lib/debship/lab
[ "$(id -u)" = 0 ] || { echo "bench: the lab needs root" >&2; exit 1; }
/usr/bin/python3 -I -c 'import urllib3' 2>/dev/null ||
	{ echo "bench: the urllib3 client needs Debian's python3-urllib3 (apt-get install python3-urllib3)" >&2; exit 1; }
make build >/dev/null

work=$(mktemp -d /var/tmp/debship-deploy-bench.XXXXXX)
KINDS="new pool retry urllib3"
lg_pids=
cleanup() {
	for p in $lg_pids; do kill "$p" 2>/dev/null || true; done
	"$DEBSHIP" lab down >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
log() { echo "bench: $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

go build -o "$work/loadgen" ./bench/loadgen

build() { # VERSION -> path of the .deb
	local src=$work/src-$1
	cp -r examples/hello-web "$src"
	sed -i "s/^version = \".*\"/version = \"$1\"/" "$src/pyproject.toml"
	"$DEBSHIP" build "$src" --mode cluster --target "$TARGET" --output "$work/dist" --no-index 2>"$work/build-$1.log" | tail -1
}
log "building hello-web 1.4.0, 1.5.0, 1.6.0"
v1=$(build 1.4.0); v2=$(build 1.5.0); v3=$(build 1.6.0)

log "lab up"
"$DEBSHIP" lab up --release "$RELEASE" >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
# The host reaches SSH without ufw's rate limit (the naive loop and the
# deploy open many connections); the rest of the inventory is the lab's.
inv=$LAB/bench.toml
cp "$LAB/cluster.toml" "$inv"
printf '\n[hardening]\ntrusted-sources = ["10.231.0.1"]\n' >>"$inv"

log "cluster apply with $(basename "$v1")"
"$DEBSHIP" cluster apply -i "$inv" --package "$v1" >"$work/apply.log" 2>&1 || { tail -30 "$work/apply.log" >&2; exit 1; }

wait_healthy() {
	local _
	for _ in $(seq 120); do
		if curl -fsS -m 2 "$URL" >/dev/null 2>&1 &&
			curl -fsS -m 2 http://10.231.0.11:8080/healthz >/dev/null 2>&1 &&
			curl -fsS -m 2 http://10.231.0.12:8080/healthz >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	echo "bench: the cluster did not become healthy" >&2
	exit 1
}

# measure NAME CMD...: runs CMD under load, appends a table row per client
# kind to $work/rows.
measure() {
	local name=$1; shift
	wait_healthy
	local k p
	for k in $KINDS; do
		"$work/loadgen" -kind "$k" -url "$URL" -rate "$RATE" -timeout 2s -duration 10m >"$work/load-$k.json" 2>"$work/load-$k.log" &
		lg_pids="$lg_pids $!"
	done
	local t0; t0=$(now)
	sleep 3
	local s e
	s=$(now)
	local out=$work/${name//[^a-z0-9]/-}.log
	"$@" >"$out" 2>&1 || { tail -30 "$out" >&2; exit 1; }
	e=$(now)
	sleep 3
	while [ "$(secs "$t0" "$(now)" | cut -d. -f1)" -lt "$MIN_LOAD" ]; do sleep 0.5; done
	for p in $lg_pids; do kill -INT "$p"; done
	for p in $lg_pids; do wait "$p"; done
	lg_pids=
	for k in $KINDS; do
		log "$name, client $k: $(cat "$work/load-$k.log"); versions served: $(jq -c .versions "$work/load-$k.json")"
		jq -r --arg n "$name" --arg k "$k" --arg t "$(secs "$s" "$e")" \
			'"| \($n) | \($k) | \($t) | \(.requests) | \(.failed)\(if .failed > 0 then " (" + (.errors | to_entries | map("\(.key): \(.value)") | join(", ")) + ")" else "" end) | \(.p50_ms|round) | \(.p99_ms|round) | \(.max_ms|round) | \(.longest_gap_ms|round) |"' \
			"$work/load-$k.json" >>"$work/rows"
	done
}

onnode() { local n=$1; shift; "$DEBSHIP" lab ssh "$n" -- sudo "$@"; }

naive() { # the naive loop with /tmp/new.deb, the passive node first
	local holder passive n
	holder=$(onnode node1 crm_resource --locate --resource floating-ip 2>&1 | grep -o 'node[0-9]' | head -1)
	case $holder in node1) passive=node2 ;; node2) passive=node1 ;; *) echo "floating IP not located: $holder"; return 1 ;; esac
	echo "floating IP on $holder; $passive first"
	# --wait: without it pcs returns before pacemaker acted, and on
	# pacemaker 3 the standby and unstandby of a node can fold into one
	# transition that restarts nothing (the old version kept serving).
	for n in "$passive" "$holder"; do
		onnode "$n" pcs node standby "$n" --wait=120
		onnode "$n" dpkg -i /tmp/new.deb
		onnode "$n" pcs node unstandby "$n" --wait=120
	done
}

# served VERSION: a row counts only if the floating IP serves the new
# version afterwards (a loop that restarted nothing fails no request).
served() {
	local got
	got=$(curl -fsS -m 2 "$URL" | jq -r .version)
	[ "$got" = "$1" ] || { echo "bench: the floating IP serves $got after the deploy, not $1" >&2; exit 1; }
}

log "debship deploy $(basename "$v2")"
measure "debship deploy" "$DEBSHIP" deploy -i "$inv" "$v2"
served 1.5.0

for n in node1 node2; do onnode "$n" tee /tmp/new.deb >/dev/null <"$v3"; done
log "naive loop with $(basename "$v3")"
measure "naive standby/dpkg -i/unstandby" naive
served 1.6.0

echo "| $RATE req/s per client, 2 s timeout | client | deploy wall time (s) | requests | failed | p50 (ms) | p99 (ms) | max (ms) | longest gap (ms) |"
echo "|---|---|---|---|---|---|---|---|---|"
cat "$work/rows"
