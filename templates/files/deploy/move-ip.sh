# move-ip.sh: runs on the node that holds the floating IP ({{.From}}) and
# hands the IP to {{.To}}, which runs the new version and passed its health
# check.
#
# Why not just "crm_resource --move": when IPaddr2 deletes the address, a
# request in flight on this node can no longer be answered (its packets
# would leave from an address the node no longer has) and the client waits
# until its timeout. So first new connections to the floating IP are
# dropped here (the client's kernel sends the SYN again after 1 s, by which
# time the IP answers on {{.To}}), then the requests in flight finish (at
# most {{.DrainMS}} ms), idle keep-alive connections are reset, and only
# then does pacemaker move the IP. The rule goes away as soon as the
# address has left this node.
set -u
vip={{quote .VIP}}
port={{.Port}}
to={{quote .To}}
drain_ms={{.DrainMS}}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rule="INPUT -d $vip/32 -p tcp --dport $port --syn -m comment --comment debship-drain -j DROP"
dropped=no
# busy counts the connections to the floating IP's port that carry a
# request: being set up or closed, data queued either way, nothing received
# yet, or a request received after the last answer was sent (ss -i: lastrcv
# more recent than lastsnd). An idle keep-alive connection is not busy:
# waiting for it to close would wait for the client.
busy() {
	a=$(ss -Htn state syn-recv state close-wait state fin-wait-1 state last-ack src "$vip:$port" 2>/dev/null | grep -c . || true)
	b=$(ss -Htni state established src "$vip:$port" 2>/dev/null | awk '
		/^[0-9]/ { queued = ($1 > 0 || $2 > 0); next }
		{
			snd = -1; rcv = -1; got = 0
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^lastsnd:/) snd = substr($i, 9) + 0
				else if ($i ~ /^lastrcv:/) rcv = substr($i, 9) + 0
				else if ($i ~ /^bytes_received:/) got = substr($i, 16) + 0
			}
			if (queued || got == 0 || rcv < snd) n++
		}
		END { print n + 0 }')
	echo $(( a + ${b:-0} ))
}
cleanup() {
	if [ "$dropped" = yes ]; then iptables -w 5 -D $rule 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
start=$(now_ms)
{{- if .Drain}}
if command -v iptables >/dev/null 2>&1 && iptables -w 5 -I $rule 2>/dev/null; then
	dropped=yes
	while :; do
		n=$(busy)
		[ "$n" -eq 0 ] && break
		if [ $(( $(now_ms) - start )) -ge "$drain_ms" ]; then
			echo "warning: $n connections still open after ${drain_ms} ms; moving the floating IP anyway"
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
