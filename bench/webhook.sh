#!/bin/bash
# Times `debship webhook serve` answering GitLab deliveries on loopback:
# N deliveries (default 2000) at RATE per second (default 200, so 10 s),
# open loop, a mix of ignored valid deliveries (a branch pipeline), wrong
# tokens (401) and unknown events (200 ignored); prints the status codes
# and the p50/p99/max response latency as a markdown table. No deploy
# runs ([deploy] command = /bin/true is never reached) and GitLab is never
# contacted. Then, closed loop (as wrk does), CONNS connections (default 4)
# post an ignored valid delivery back to back for DURATION (default 10s),
# to debship and, in the same run, to the baseline adnanh/webhook (Debian's
# webhook package: apt-get install webhook) with a rule that ignores a
# branch pipeline; the second table is answers per second and latency.
# Not a test.   RATE=200 N=2000 CONNS=4 DURATION=10s bench/webhook.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-200}
N=${N:-2000}
CONNS=${CONNS:-4}
DURATION=${DURATION:-10s}
command -v webhook >/dev/null ||
	{ echo "bench: the baseline is adnanh/webhook: apt-get install webhook" >&2; exit 1; }
make build >/dev/null

dir=$(mktemp -d /tmp/debship-webhook-bench.XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$dir"
}
trap cleanup EXIT
go build -o "$dir/webhookload" ./bench/webhookload

free_port() { # a loopback port nothing answers on
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	echo "bench: no free port" >&2; exit 1
}
port=$(free_port)
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077; printf '%s' "$token" >"$dir/token"; printf 'unused-read-token' >"$dir/gitlab-token")
cat >"$dir/webhook.toml" <<TOML
listen = "127.0.0.1:$port"
state-dir = "$dir/state"
[token]
file = "$dir/token"
[project]
id = 42
[trigger]
event = "pipeline"
[gitlab]
url = "http://127.0.0.1:1"
package = "hello-web"
target = "debian-13"
[gitlab.token]
file = "$dir/gitlab-token"
[deploy]
command = ["/bin/true"]
TOML
chmod 600 "$dir/webhook.toml"

bin/debship webhook serve -c "$dir/webhook.toml" >"$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || { cat "$dir/serve.log" >&2; exit 1; }
	sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "bench: receiver not listening" >&2; cat "$dir/serve.log" >&2; exit 1; }

"$dir/webhookload" -url "http://127.0.0.1:$port/hooks/gitlab" -token "$token" -rate "$RATE" -n "$N"
echo
echo "| receiver | connections | answers | p50 | p99 | failed |"
echo "|---|---|---|---|---|---|"
"$dir/webhookload" -url "http://127.0.0.1:$port/hooks/gitlab" -token "$token" -conns "$CONNS" -duration "$DURATION"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

# The baseline: the token in the header and a rule that only a tag
# pipeline satisfies; a branch pipeline is answered 200, "Hook rules were
# not satisfied", and nothing runs.
bport=$(free_port)
cat >"$dir/hooks.json" <<JSON
[{"id": "gitlab", "execute-command": "/bin/true",
  "trigger-rule": {"and": [
    {"match": {"type": "value", "value": "$token", "parameter": {"source": "header", "name": "X-Gitlab-Token"}}},
    {"match": {"type": "value", "value": "true", "parameter": {"source": "payload", "name": "object_attributes.tag"}}}]}}]
JSON
webhook -hooks "$dir/hooks.json" -ip 127.0.0.1 -port "$bport" >"$dir/baseline.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$bport") 2>/dev/null && break
	sleep 0.1
done
"$dir/webhookload" -url "http://127.0.0.1:$bport/hooks/gitlab" -token "$token" -conns "$CONNS" -duration "$DURATION" \
	-name "adnanh/webhook $(webhook -version 2>&1 | grep -o '[0-9][0-9.]*' | head -n 1)"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; receiver log: $(grep -c . "$dir/serve.log" || true) lines"
