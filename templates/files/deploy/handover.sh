# handover.sh: runs on {{.To}}, the node the floating IP moves to, before
# and after the move (see move-ip.sh). During the move the node giving the
# IP up passes new connections on to this one unchanged, still addressed to
# the floating IP, which this node does not hold yet; this rule makes them
# reach the app here, at {{.Addr}}. A connection accepted that way keeps its
# translation when the rule goes and when the IP arrives: its packets then
# come here directly and still find it. So a new connection is never
# refused or dropped during the move, and none waits for its SYN to be sent
# again.
set -u
vip={{quote .VIP}}
addr={{quote .Addr}}
port={{.Port}}
rule="PREROUTING -d $vip/32 -p tcp --dport $port -m comment --comment debship-handover -j DNAT --to-destination $addr:$port"
{{- if .Remove}}
while iptables -w 5 -t nat -D $rule 2>/dev/null; do :; done
exit 0
{{- else}}
to={{quote .To}}
if ! command -v iptables >/dev/null 2>&1; then
	echo "handover=none (no iptables on $to)"
	exit 0
fi
if iptables -w 5 -t nat -C $rule 2>/dev/null || iptables -w 5 -t nat -I $rule; then
	echo "handover=ready"
else
	echo "handover=none (iptables refused the rule on $to)"
fi
{{- end}}
