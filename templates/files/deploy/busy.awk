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
# answer, or an answer and the next request, often show the same time:
# such a connection counts as busy for 50 ms after it, then as idle (a
# request still unanswered by then is a long one that happened to come in
# the tick of the previous answer: rare, and cut short at worst). A
# connection opened moments ago with nothing received yet is busy (its
# request is on its way); an idle keep-alive connection, and one a client
# opened ahead of need and never used (Go's net/http and browsers do), is
# not: waiting for it would wait for the client.
#
# With -v min=MS only requests that have run for at least MS are counted
# (lastrcv is when the request came): the long ones, worth waiting for
# while new connections are still served.
/^[0-9]/ { queued = ($1 > 0 || $2 > 0); next }
{
	snd = -1; rcv = -1; got = 0; sent = 0
	for (i = 1; i <= NF; i++) {
		if ($i ~ /^lastsnd:/) snd = substr($i, 9) + 0
		else if ($i ~ /^lastrcv:/) rcv = substr($i, 9) + 0
		else if ($i ~ /^bytes_received:/) got = substr($i, 16) + 0
		else if ($i ~ /^bytes_sent:/) sent = substr($i, 12) + 0
	}
	if (queued || (got > 0 && (sent == 0 || rcv < snd))) {
		if (rcv >= min + 0) n++
	} else if (got > 0 && rcv == snd && rcv < 50) {
		if (min + 0 == 0) n++
	} else if (got == 0 && rcv < 200) {
		if (min + 0 == 0) n++
	}
}
END { print n + 0 }
