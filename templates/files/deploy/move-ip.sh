# move-ip.sh: runs on the node that holds the floating IP ({{.From}}) and
# hands the IP to {{.To}}, which runs the new version and passed its health
# check.
#
# Why not just "crm_resource --move": when IPaddr2 deletes the address, a
# request in flight on this node can no longer be answered (its packets
# would leave from an address the node no longer has) and the client waits
# until its timeout. So first the long requests finish (at most
# {{.DrainMS}} ms) while new ones are still served here; then new
# connections to the floating IP are dropped (the client's kernel sends the
# SYN again after 1 s, by which time the IP answers on {{.To}}), the short
# requests finish (at most {{.HoldMS}} ms), idle keep-alive connections are
# reset, and only then does pacemaker move the IP. The rule goes away as
# soon as the address has left this node.
set -u
vip={{quote .VIP}}
port={{.Port}}
to={{quote .To}}
drain_ms={{.DrainMS}}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rule="INPUT -d $vip/32 -p tcp --dport $port --syn -m comment --comment debship-drain -j DROP"
dropped=no
busy_awk={{quote .BusyAwk}}
# busy counts the connections to the floating IP's port that carry a
# request (see busy.awk); with an argument, only the requests that have run
# for at least that many ms. A connection being set up or closed counts
# too, without an argument.
established() { ss -Htni state established src "$vip:$port" 2>/dev/null; }
busy() {
	a=0
	if [ $# -eq 0 ]; then
		a=$(ss -Htn state syn-recv state close-wait state fin-wait-1 state last-ack src "$vip:$port" 2>/dev/null | grep -c . || true)
	fi
	b=$(established | awk -v min="${1:-0}" "$busy_awk")
	echo $(( a + ${b:-0} ))
}
# show_busy lists them, as busy counts them (for a warning).
show_busy() { established | awk -v min="${1:-0}" -v show=1 "$busy_awk"; }
cleanup() {
	if [ "$dropped" = yes ]; then iptables -w 5 -D $rule 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
start=$(now_ms)
{{- if .Drain}}
# First the long requests (running for {{.LongMS}} ms or more) finish
# while this node still takes new connections: waiting costs nobody
# anything yet.
while :; do
	n=$(busy {{.LongMS}})
	[ "$n" -eq 0 ] && break
	if [ $(( $(now_ms) - start )) -ge "$drain_ms" ]; then
		echo "warning: $n requests still running after ${drain_ms} ms; moving the floating IP anyway"
		show_busy {{.LongMS}}
		break
	fi
	sleep 0.05
done
# Then new connections are held back, the short requests finish, and the
# IP moves, all within {{.HoldMS}} ms plus the move: a SYN dropped here must
# find the new holder when the client sends it again, 1 s later. A second
# drop would cost the client 3 s.
if command -v iptables >/dev/null 2>&1 && iptables -w 5 -I $rule 2>/dev/null; then
	dropped=yes
	hold_start=$(now_ms)
	while :; do
		n=$(busy)
		[ "$n" -eq 0 ] && break
		if [ $(( $(now_ms) - hold_start )) -ge {{.HoldMS}} ]; then
			echo "warning: $n connections still busy after holding new ones back for {{.HoldMS}} ms; moving the floating IP anyway"
			show_busy
			break
		fi
		sleep 0.01
	done
	# A keep-alive connection left open here breaks when the address moves:
	# the client's next request on it reaches {{.To}}, which resets it, and a
	# client that never re-sends a request (a POST) fails it. Reset them now,
	# while idle: the client sees what a server's keep-alive timeout does to
	# it and opens a new connection, whose SYN is dropped here and answered
	# on {{.To}} after the client's retransmission.
	k=$(ss -K -Htn state established src "$vip:$port" 2>/dev/null | grep -c . || true)
	echo "reset_idle=$k"
else
	echo "warning: no iptables on this node: requests in flight are not drained"
fi
{{- end}}
echo "drained_ms=$(( $(now_ms) - start ))"
crm_resource --move --resource {{.Resource}} --node "$to" >/dev/null || exit 1
# Keep the rule until the address is gone here: pacemaker stops IPaddr2
# on this node before it starts it on the other one.
while ip -o addr show | grep -q " $vip/"; do
	if [ $(( $(now_ms) - start )) -ge {{.TimeoutMS}} ]; then
		echo "the floating IP is still on this node {{.TimeoutMS}} ms after the move" >&2
		exit 1
	fi
	sleep 0.01
done
echo "released_ms=$(( $(now_ms) - start ))"
# How long a new connection was held back: over 1 s, a client's SYN was
# dropped twice.
if [ "$dropped" = yes ]; then echo "held_ms=$(( $(now_ms) - hold_start ))"; fi
