# busy.awk counts the connections that carry a request, from
# "ss -Htni state established src VIP:PORT": a line per socket (Recv-Q,
# Send-Q, addresses), then one with its TCP information (ss -i). The times
# there are milliseconds ago: lastrcv the last data received, lastsnd the
# last data sent (pure ACKs move neither).
#
# A connection carries a request when data is queued either way, when it
# received a request and has sent nothing yet, or when it received data
# after it last sent some (a request whose answer is not out yet). The
# times tick in jiffies (4 ms on Debian's kernels), so a request and its
# answer, or an answer and the next request, often show the same time.
# Mostly it is a request answered within the tick, so such a connection
# counts as busy for 8 ms only, then as idle: a keep-alive connection in
# use every 80 ms would otherwise look busy most of the time, and a
# request that came in the tick of the previous answer and is still not
# answered 8 ms later is rare (it is cut short at worst). A
# connection opened moments ago with nothing received yet is busy (its
# request is on its way); an idle keep-alive connection, and one a client
# opened ahead of need and never used (Go's net/http and browsers do), is
# not: waiting for it would wait for the client.
#
# With -v show=1 each busy connection is printed (client, times, bytes)
# instead of the count: the warning when the drain gives up says which.
#
# With -v min=MS only requests that have run for at least MS are counted
# (lastrcv is when the request came): the long ones, worth waiting for
# while new connections are still served.
#
# With -v quiet=MS each connection is printed with what quiesce.sh may do
# with it, by a strict rule meant for connections whose clients' requests
# are held back: "new PEER" has sent nothing yet (its first request is on
# its way or being answered, and a client does not send a first request
# again on a new connection), "quiet PEER" has an answer out and nothing sent or queued
# either way for at least MS (its answer is complete unless the app
# paused longer than that within one answer), "busy PEER" is anything
# else. A peer named in -v next_sent="PEER ..." has sent its next request
# (held back): its answer is complete once the last data went out after
# the last came in and the app read everything, whatever is still unacked
# (the ACK was in the held segment).
BEGIN { n_next = split(next_sent, a, " "); for (i = 1; i <= n_next; i++) nexts[a[i]] = 1 }
/^[0-9]/ { queued = ($1 > 0 || $2 > 0); recvq = $1 + 0; peer = $4; next }
{
	snd = -1; rcv = -1; got = 0; sent = 0
	for (i = 1; i <= NF; i++) {
		if ($i ~ /^lastsnd:/) snd = substr($i, 9) + 0
		else if ($i ~ /^lastrcv:/) rcv = substr($i, 9) + 0
		else if ($i ~ /^bytes_received:/) got = substr($i, 16) + 0
		else if ($i ~ /^bytes_sent:/) sent = substr($i, 12) + 0
	}
	if (quiet != "") {
		# The peer goes into ss filters and iptables rules: an IPv4
		# address and port, nothing else.
		if (peer !~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+$/) print "busy", "-"
		else if (sent == 0) print "new", peer
		else if (rcv >= snd && (!queued && snd >= quiet + 0 || (peer in nexts) && recvq == 0)) print "quiet", peer
		else print "busy", peer
		next
	}
	b = 0
	if (queued || (got > 0 && (sent == 0 || rcv < snd))) b = (rcv >= min + 0)
	else if (got > 0 && rcv == snd && rcv < 8) b = (min + 0 == 0)
	else if (got == 0 && rcv < 200) b = (min + 0 == 0)
	if (b) {
		n++
		if (show) printf "  %s queued=%d lastrcv=%dms lastsnd=%dms received=%d sent=%d\n", peer, queued, rcv, snd, got, sent
	}
}
END { if (!show && quiet == "") print n + 0 }
