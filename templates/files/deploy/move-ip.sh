# move-ip.sh: runs on the node that holds the floating IP ({{.From}}) and
# hands the IP to {{.To}}, which runs the new version and passed its health
# check.
#
# Why not just "crm_resource --move": when IPaddr2 deletes the address, a
# request in flight on this node can no longer be answered (its packets
# would leave from an address the node no longer has) and the client waits
# until its timeout. So first the long requests finish (at most
# {{.DrainMS}} ms) while new ones are still served here. Then new
# connections go to {{.To}}: this node passes every packet that is not for
# one of its own connections on to {{.To}} unchanged (iptables TEE, the
# original dropped here), where handover.sh makes it reach the app. The
# short requests finish here, the kept-alive connections are ended
# without cutting an answer (quiesce.sh, below), pacemaker moves the IP,
# and this node keeps passing packets on until the clients have learned
# the IP's new place.
# Nobody's SYN is dropped, so nobody waits the 1 s after which a client
# sends it again.
#
# Where that cannot be done (no TEE target, {{.To}} not directly reachable
# on the IP's interface, handover.sh could not add its rule), new
# connections are dropped instead while the short requests finish: the
# client's kernel sends the SYN again after 1 s, by which time the IP
# answers on {{.To}}.
set -u
vip={{quote .VIP}}
port={{.Port}}
to={{quote .To}}
to_addr={{quote .ToAddr}}
rule="INPUT -d $vip/32 -p tcp --dport $port --syn -m comment --comment debship-drain -j DROP"
dropped=no
handover=no
chain=debship-handover
# shellcheck disable=SC2016 # an awk program: its $ are awk's
busy_awk={{quote .BusyAwk}}
{{.Quiesce}}
# handover_on passes on to {{.To}} the packets to the floating IP's port
# that are not for a connection of this node: a SYN always (an app
# listening on the floating IP itself must not take it), any other packet
# when no socket here owns it ("-m socket" ignores listeners on 0.0.0.0).
handover_on() {
	{ iptables -w 5 -t mangle -N $chain 2>/dev/null || iptables -w 5 -t mangle -F $chain; } &&
		iptables -w 5 -t mangle -A $chain -p tcp --syn -j TEE --gateway "$to_addr" &&
		iptables -w 5 -t mangle -A $chain -p tcp --syn -j DROP &&
		iptables -w 5 -t mangle -A $chain -m socket -j RETURN &&
		iptables -w 5 -t mangle -A $chain -j TEE --gateway "$to_addr" &&
		iptables -w 5 -t mangle -A $chain -j DROP &&
		iptables -w 5 -t mangle -I PREROUTING -d "$vip/32" -p tcp --dport "$port" -j $chain && return 0
	handover_off
	return 1
}
handover_off() {
	while iptables -w 5 -t mangle -D PREROUTING -d "$vip/32" -p tcp --dport "$port" -j $chain 2>/dev/null; do :; done
	iptables -w 5 -t mangle -F $chain 2>/dev/null
	iptables -w 5 -t mangle -X $chain 2>/dev/null
}
# passed counts the packets passed on so far.
passed() { counted $chain | awk '/ -j TEE / {n += $1} END {print n + 0}'; }
cleanup() {
	if [ "$frozen" = yes ]; then freeze_off; fi
	if [ "$dropped" = yes ]; then iptables -w 5 -D $rule 2>/dev/null || true; fi
	if [ "$handover" = yes ]; then handover_off; fi
}
trap cleanup EXIT
# PIPE: the SSH connection is gone and an echo found it out.
trap 'exit 130' INT TERM HUP PIPE
start=$(now_ms)
hold_start=$start
{{- if .Drain}}
drain_ms={{.DrainMS}}
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
{{- if .Handover}}
# {{.To}} must be reachable directly on the floating IP's interface: a
# router would send packets addressed to the floating IP back here.
dev=$(ip -o -4 addr show | awk -v a="$vip" '{split($4, p, "/")} p[1] == a {print $2; exit}')
case "$(ip -o -4 route get "$to_addr" 2>/dev/null)" in
*" via "*) echo "warning: $to_addr is reached through a router; holding new connections back instead of passing them on" ;;
*" dev $dev "*) if handover_on; then handover=yes; else echo "warning: iptables cannot pass connections on (TEE, socket); holding them back instead"; fi ;;
*) echo "warning: $to_addr is not on the floating IP's interface ${dev:-(none)}; holding new connections back instead of passing them on" ;;
esac
{{- end}}
# Then the short requests finish, and the kept-alive connections end (see
# quiesce.sh), while new connections go to {{.To}} (within
# {{.PassMS}} ms: holding longer costs them nothing) or, failing that, are
# held back (within {{.HoldMS}} ms: a SYN dropped here must find the new
# holder when the client sends it again, 1 s later; a second drop would
# cost the client 3 s).
hold_start=$(now_ms)
if [ "$handover" = yes ]; then
	quiesce {{.PassMS}}
elif command -v iptables >/dev/null 2>&1 && iptables -w 5 -I $rule 2>/dev/null; then
	dropped=yes
	quiesce {{.HoldMS}}
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
if [ "$handover" = yes ]; then
	# Until {{.To}} holds the IP and the clients have learned it from its
	# ARP announcement, their packets still come here: pass them on until
	# none has come for 300 ms (at most {{.SettleMS}} ms after the move).
	while ! crm_resource --locate --resource {{.Resource}} 2>/dev/null | awk -v n="$to" '$NF == n {f = 1} END {exit !f}'; do
		if [ $(( $(now_ms) - start )) -ge {{.TimeoutMS}} ]; then break; fi
		# crm_resource is not cheap; this loop shares the node with the app.
		sleep 0.2
	done
	located=$(now_ms)
	last=-1
	while n=$(passed) && [ "$n" != "$last" ]; do
		last=$n
		if [ $(( $(now_ms) - located )) -ge {{.SettleMS}} ]; then break; fi
		sleep 0.3
	done
	echo "passed=$last"
	echo "handed_over_ms=$(( $(now_ms) - hold_start ))"
fi
# How long a new connection was held back: over 1 s, a client's SYN was
# dropped twice.
if [ "$dropped" = yes ]; then echo "held_ms=$(( $(now_ms) - hold_start ))"; fi
