# quiesce.sh: the connections to $vip:$port on this node, for move-ip.sh,
# which sets vip, port and busy_awk (busy.awk) and then sources this.
#
# quiesce ends this node's kept-alive connections before the floating IP
# leaves it: one left open breaks when the address moves (the client's next
# request reaches the new holder, which resets it, and a client that never
# sends a request again, a POST, fails it). Reset while idle, the client
# sees what a server's keep-alive timeout does to it and opens a new
# connection, which the new holder serves.
#
# "Idle" read from the kernel (ss) is a guess: the app may pause between
# two writes of one answer, and a client may send its next request between
# the look and the reset; either way the reset cuts an answer short, and
# no client may send a request again once part of its answer came. So the
# clients' data on this node's own connections is held back first
# (dropped here; the client's kernel would send it again): then a
# connection is reset once its answer is out and nothing moved either way
# for quiet_ms, or at once when its client sent its next request, and the
# request held back fails with a reset of a reused
# connection, which clients send again on a new one (Go's net/http and
# urllib3 for idempotent requests, browsers). Not held back: a connection
# not answered on yet, since a client does not send a first request again
# on a new connection; it is held back once it has answered.
quiet_ms=50
freeze=debship-freeze
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
established() { ss -Htni state established src "$vip:$port" 2>/dev/null; }
# closing counts the connections being set up or closed.
closing() { ss -Htn state syn-recv state close-wait state fin-wait-1 state last-ack src "$vip:$port" 2>/dev/null | grep -c . || true; }
# busy MS counts the connections that carry a request (see busy.awk)
# that has run for at least MS ms. With 0, a connection being set up or
# closed counts too.
busy() {
	a=0
	if [ "$1" -eq 0 ]; then a=$(closing); fi
	b=$(established | awk -v min="$1" "$busy_awk")
	echo $(( a + ${b:-0} ))
}
# show_busy lists them, as busy counts them (for a warning).
show_busy() { established | awk -v min="$1" -v show=1 "$busy_awk"; }
# rule_for PEER: iptables' words for the packets from one client connection.
rule_for() { echo "-s ${1%:*}/32 -p tcp --sport ${1##*:}"; }
# freeze_on: from now on, data from the clients of the connections that
# hold_back names is held back (a data segment has PSH set, as Linux and
# Windows set it on a write's last segment, or is longer than any bare ACK:
# 20 bytes of IP, at most 60 of TCP header). Nothing else is: a connection
# this node has not answered on yet carries a first request, which its
# client would not send again. One rule per connection, whose counter says
# when its client has sent its next request (see held_peers).
freeze_on() {
	printf '*mangle\n:%s - [0:0]\n-A %s -p tcp --tcp-flags PSH NONE -m length --length 0:80 -j RETURN\n-I PREROUTING 1 -d %s/32 -p tcp --dport %s -j %s\nCOMMIT\n' \
		$freeze $freeze "$vip" "$port" $freeze | iptables-restore -w 5 --noflush && frozen=yes && return 0
	freeze_off
	return 1
}
# hold_back PEER...: hold back the data of these connections.
hold_back() {
	{
		echo "*mangle"
		for p in "$@"; do echo "-A $freeze $(rule_for "$p") -m socket -j DROP"; done
		echo "COMMIT"
	} | iptables-restore -w 5 --noflush
}
# counted CHAIN: the rules of CHAIN in the mangle table, each as "PACKETS
# -A CHAIN MATCHES -j TARGET", read from iptables-save -c, whose
# "[packets:bytes] -A CHAIN ..." lines keep one format across iptables'
# versions and backends (iptables -L's columns move with its options).
counted() {
	iptables-save -c -t mangle 2>/dev/null | awk -v chain="$1" '$2 == "-A" && $3 == chain {
		split(substr($1, 2), c, ":"); $1 = c[1] + 0; print
	}'
}
# held prints "SEGMENTS PEER" for each connection held back: the segments
# its rule dropped, and the client's address and port (from the words of
# rule_for).
held() {
	counted $freeze | awk '$NF == "DROP" {
		src = ""; sport = ""
		for (i = 4; i < NF; i++) if ($i == "-s") src = $(i + 1); else if ($i == "--sport") sport = $(i + 1)
		sub(/\/32$/, "", src)
		if (src != "" && sport != "") print $1, src ":" sport
	}'
}
# held_peers lists the connections held back whose client has sent data
# since, on one line (an awk -v value): an HTTP/1.1 client sends its next
# request only once it has the whole answer to the last one, so that
# answer is complete, even if the ACK that says so was in the segment held
# back.
held_peers() { held | awk '$1 > 0 {printf "%s%s", s, $2; s = " "}'; }
frozen=no
freeze_off() {
	frozen=no
	while iptables -w 5 -t mangle -D PREROUTING -d "$vip/32" -p tcp --dport "$port" -j $freeze 2>/dev/null; do :; done
	iptables -w 5 -t mangle -F $freeze 2>/dev/null
	iptables -w 5 -t mangle -X $freeze 2>/dev/null
}
# kill_peers [PEER...]: reset these connections (without one, all of
# them) and print how many were.
kill_peers() {
	f=""
	for p in "$@"; do f="$f${f:+ or }dst $p"; done
	# shellcheck disable=SC2086 # the filter's words
	ss -K -Htn state established src "$vip:$port" ${f:+"(" $f ")"} 2>/dev/null | grep -c . || true
}
# held_segments counts the segments held back so far.
held_segments() { held | awk '{n += $1} END {print n + 0}'; }
# quiesce BOUND_MS: end this node's connections to $vip:$port, then print
# reset_idle= (connections reset) and held_segments=. After
# BOUND_MS the ones left are reset as they are, with a warning.
quiesce() {
	q_start=$(now_ms)
	reset=0
	if ! freeze_on; then
		echo "warning: iptables cannot hold requests back (socket, length): kept-alive connections are reset when they look idle, which may cut an answer"
		while [ "$(busy 0)" -ne 0 ] && [ $(( $(now_ms) - q_start )) -lt "$1" ]; do sleep 0.01; done
		echo "reset_idle=$(kill_peers)"
		return
	fi
	held_back=""
	plan=""
	while :; do
		next_sent=""
		case "$plan" in *busy*) next_sent=$(held_peers) ;; esac
		plan=$(established | awk -v quiet=$quiet_ms -v next_sent="$next_sent" "$busy_awk")
		# Reset the quiet ones that were held back before this plan was
		# read (one held back in this round is judged in the next).
		kill=""
		for p in $(echo "$plan" | awk '$1 == "quiet" {print $2}'); do
			case " $held_back " in *" $p "*) kill="$kill $p" ;; esac
		done
		# shellcheck disable=SC2086 # one peer a word
		if [ -n "$kill" ]; then reset=$(( reset + $(kill_peers $kill) )); fi
		# Hold back the ones that have answered once.
		more=""
		for p in $(echo "$plan" | awk '$1 != "new" && $2 != "-" {print $2}'); do
			case " $held_back " in *" $p "*) ;; *) more="$more $p" ;; esac
		done
		# shellcheck disable=SC2086 # one peer a word
		if [ -n "$more" ] && hold_back $more; then held_back="$held_back $more"; fi
		if [ -z "$plan" ] && [ "$(closing)" -eq 0 ]; then break; fi
		if [ $(( $(now_ms) - q_start )) -ge "$1" ]; then
			echo "warning: connections still busy $1 ms after new ones went elsewhere; resetting them and moving the floating IP anyway"
			show_busy 0
			reset=$(( reset + $(kill_peers) ))
			break
		fi
		# Every pass: a peer that hold_back refused comes back in the next
		# plan, and without a pause this loop would spin until the bound.
		sleep 0.01
	done
	echo "reset_idle=$reset"
	echo "held_segments=$(held_segments)"
}
