# leftovers.sh: removes the rules a move left on this node when it was
# killed before its own cleanup ran (move-ip.sh removes its rules on exit,
# hangup and termination, but not on SIGKILL; handover.sh's rule goes in a
# second call that a killed debship never makes). Left in place, they
# would hold back this node's new connections, pass them on to another
# node, or hold back the requests on its kept-alive connections, the next
# time it holds the floating IP. debship deploy runs this on every node
# once it holds the deploy lock: no move is under way then. Prints a line
# for each rule or chain removed.
command -v iptables >/dev/null 2>&1 || exit 0
# A rule's words are split, never globbed.
set -f
for t in filter mangle nat; do
	# Rules in the built-in chains (upper case; ufw's and debship's own
	# chains are lower case) that name debship's drain or handover.
	iptables -w 5 -t $t -S 2>/dev/null | grep -E '^-A [A-Z]+ .*debship-(drain|handover|freeze)( |$)' | while read -r line; do
		# shellcheck disable=SC2086 # iptables -S prints a rule as its words
		iptables -w 5 -t $t -D ${line#-A } && echo "removed from $t: $line"
	done
	for c in debship-handover debship-freeze; do
		if iptables -w 5 -t $t -n -L $c >/dev/null 2>&1; then
			iptables -w 5 -t $t -F $c && iptables -w 5 -t $t -X $c && echo "removed chain $c from $t"
		fi
	done
done
exit 0
