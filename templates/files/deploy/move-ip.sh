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
# most {{.DrainMS}} ms), and only then does pacemaker move the IP. The rule
# goes away as soon as the address has left this node.
set -u
vip={{quote .VIP}}
port={{.Port}}
to={{quote .To}}
drain_ms={{.DrainMS}}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rule="INPUT -d $vip/32 -p tcp --dport $port --syn -m comment --comment debship-drain -j DROP"
dropped=no
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
		n=$(ss -Htn state syn-recv state established state close-wait state fin-wait-1 state last-ack src "$vip:$port" 2>/dev/null | grep -c . || true)
		[ "$n" -eq 0 ] && break
		if [ $(( $(now_ms) - start )) -ge "$drain_ms" ]; then
			echo "warning: $n connections still open after ${drain_ms} ms; moving the floating IP anyway"
			break
		fi
		sleep 0.01
	done
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
