// Package ipmove hands the floating IP from one node to another so that
// its clients notice as little as they can: the requests in flight on the
// old holder finish, its kept-alive connections end without an answer cut
// short, and new connections are passed on to the new holder while
// pacemaker moves the address (where that cannot be done, they are held
// back for less than the 1 s after which a client sends its SYN again).
//
// The work is done on the nodes by the scripts in templates/files/deploy:
// move-ip.sh (with busy.awk and quiesce.sh) on the old holder, handover.sh
// on the new one, and leftovers.sh, which removes what a killed move left.
// This package renders them, runs them and reads what they print;
// cluster/deploy decides when the IP moves and checks the new holder first.
package ipmove

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/templates"
)

// The drain's limits besides Move.DrainFor (see move-ip.sh): a request
// running for longRequest is waited for while the node still takes new
// connections. Then the short requests finish and the kept-alive
// connections end (quiesce.sh): within passBack while new connections go
// to the new holder, which costs them nothing; within holdBack where they
// are held back instead: holdBack plus the move itself (100-400 ms
// measured) must stay well under the 1 s after which a client sends a
// dropped SYN again, or that SYN is dropped twice and the client waits 3 s.
const (
	longRequest = 100 * time.Millisecond
	holdBack    = 300 * time.Millisecond
	passBack    = time.Second
	// handoverSettle bounds how long the old holder passes packets on once
	// the new one holds the IP: clients learn its place from IPaddr2's
	// ARP announcement at once; one that ignores it has its packets
	// dropped as before, until its ARP cache entry expires.
	handoverSettle = 3 * time.Second
)

// Move is one move of the floating IP, From (its holder) To another node.
type Move struct {
	From, To string
	// ToAddr is To's address on the floating IP's network: where From
	// passes new connections on to.
	ToAddr   string
	VIP      string // the floating IP
	Port     int    // the app's port
	Resource string // the floating IP's pacemaker resource
	// Drain lets the requests in flight on From finish and ends its
	// kept-alive connections before the IP leaves. Only an address that
	// moves by ARP benefits: a reserved IP of a cloud API keeps reaching
	// the old node until the API has moved it, so holding back connections
	// there would only add to the wait.
	Drain bool
	// Handover: To takes the connections From passes on (Take said so);
	// without it, From holds new connections back during the move.
	Handover bool
	// DrainFor bounds the wait for long requests in flight, while From
	// still takes new connections (it also bounds the other waits of the
	// drain).
	DrainFor time.Duration
	// Settle bounds the wait for pacemaker to move the address.
	Settle time.Duration
}

// Script is move-ip.sh for m, with the files it carries: busy.awk and
// quiesce.sh.
func (m Move) Script() ([]byte, error) {
	vars := map[string]any{
		"From": m.From, "To": m.To, "ToAddr": m.ToAddr, "VIP": m.VIP, "Port": m.Port,
		"Drain": m.Drain, "Handover": m.Handover, "DrainMS": m.DrainFor.Milliseconds(), "TimeoutMS": m.Settle.Milliseconds(),
		"LongMS": longRequest.Milliseconds(), "HoldMS": min(holdBack, m.DrainFor).Milliseconds(),
		"PassMS": min(passBack, m.DrainFor).Milliseconds(), "SettleMS": handoverSettle.Milliseconds(),
		"Resource": m.Resource,
	}
	for key, name := range map[string]string{"BusyAwk": "deploy/busy.awk", "Quiesce": "deploy/quiesce.sh"} {
		b, err := templates.Raw(name)
		if err != nil {
			return nil, err
		}
		vars[key] = string(b)
	}
	return templates.Render("deploy/move-ip.sh", vars)
}

// Run runs the move on From (t): it returns once pacemaker has been asked
// to move the IP and the address has left From, and, with a handover, once
// the clients have found To. The caller clears the move's constraint.
func (m Move) Run(ctx context.Context, t transport.Transport) (Report, error) {
	script, err := m.Script()
	if err != nil {
		return Report{}, err
	}
	out, err := transport.Output(ctx, t, string(script))
	if err != nil {
		return Report{}, err
	}
	return parseReport(m, out), nil
}

// Take adds on To (t) the rule that takes the connections From passes on
// during the move (handover.sh). Where it cannot, ready is false and why
// says what stood in the way: the move then holds new connections back.
func (m Move) Take(ctx context.Context, t transport.Transport) (ready bool, why string) {
	out, err := m.handover(ctx, t, false)
	if err == nil && strings.Contains(out, "handover=ready") {
		return true, ""
	}
	if err != nil {
		out += " " + err.Error()
	}
	return false, strings.TrimSpace(out)
}

// Release removes Take's rule from To (t) once the move is over.
func (m Move) Release(ctx context.Context, t transport.Transport) error {
	_, err := m.handover(ctx, t, true)
	return err
}

func (m Move) handover(ctx context.Context, t transport.Transport, remove bool) (string, error) {
	script, err := m.handoverScript(remove)
	if err != nil {
		return "", err
	}
	return transport.Output(ctx, t, string(script))
}

func (m Move) handoverScript(remove bool) ([]byte, error) {
	return templates.Render("deploy/handover.sh", map[string]any{
		"To": m.To, "VIP": m.VIP, "Addr": m.ToAddr, "Port": m.Port, "Remove": remove,
	})
}

// ClearLeftovers removes on a node (t) the rules a killed move left behind
// (leftovers.sh) and returns a line for each rule or chain removed. Run it
// only where no move can be under way (cluster/deploy holds its lock).
func ClearLeftovers(ctx context.Context, t transport.Transport) ([]string, error) {
	script, err := templates.Raw("deploy/leftovers.sh")
	if err != nil {
		return nil, err
	}
	out, err := transport.Output(ctx, t, string(script))
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			removed = append(removed, l)
		}
	}
	return removed, nil
}

// Report is what move-ip.sh printed about a move. A number it did not
// print is -1.
type Report struct {
	From, To string
	// DrainedMS: from the start until pacemaker was asked to move the IP.
	DrainedMS int
	// ResetIdle kept-alive connections were reset once idle, and
	// HeldSegments segments of requests on them held back, for the clients
	// to send again.
	ResetIdle, HeldSegments int
	// ReleasedMS: from the start until the address left From.
	ReleasedMS int
	// HandedOverMS: how long From passed new connections on to To, Passed
	// packets in all.
	HandedOverMS, Passed int
	// HeldMS: how long new connections were held back (their SYN dropped).
	HeldMS int
	// Output is all the script printed.
	Output string
}

var (
	drainedRE  = regexp.MustCompile(`drained_ms=(\d+)`)
	releasedRE = regexp.MustCompile(`released_ms=(\d+)`)
	resetRE    = regexp.MustCompile(`reset_idle=(\d+)`)
	segmentsRE = regexp.MustCompile(`held_segments=(\d+)`)
	heldRE     = regexp.MustCompile(`held_ms=(\d+)`)
	handedRE   = regexp.MustCompile(`handed_over_ms=(\d+)`)
	passedRE   = regexp.MustCompile(`passed=(\d+)`)
)

func parseReport(m Move, out string) Report {
	num := func(re *regexp.Regexp) int {
		if s := re.FindStringSubmatch(out); s != nil {
			if n, err := strconv.Atoi(s[1]); err == nil {
				return n
			}
		}
		return -1
	}
	return Report{
		From: m.From, To: m.To,
		DrainedMS: num(drainedRE), ResetIdle: num(resetRE), HeldSegments: num(segmentsRE),
		ReleasedMS: num(releasedRE), HandedOverMS: num(handedRE), Passed: num(passedRE), HeldMS: num(heldRE),
		Output: out,
	}
}

// String is the move in one line, for the deploy's log.
func (r Report) String() string {
	msg := "moved"
	if r.DrainedMS >= 0 {
		msg = fmt.Sprintf("in-flight requests drained in %d ms", r.DrainedMS)
	}
	if r.ResetIdle > 0 {
		msg += fmt.Sprintf(", %d kept-alive connections reset once idle", r.ResetIdle)
		if r.HeldSegments > 0 {
			msg += fmt.Sprintf(" (%d segments of requests on them held back, for the clients to send again)", r.HeldSegments)
		}
	}
	if r.ReleasedMS >= 0 {
		msg += fmt.Sprintf(", released by %s after %d ms", r.From, r.ReleasedMS)
	}
	if r.HandedOverMS >= 0 {
		msg += fmt.Sprintf(", new connections passed on to %s for %d ms", r.To, r.HandedOverMS)
		if r.Passed >= 0 {
			msg += fmt.Sprintf(" (%d packets; none held back)", r.Passed)
		}
	}
	if r.HeldMS >= 0 {
		msg += fmt.Sprintf(", new connections held back %d ms", r.HeldMS)
	}
	return msg
}

// Warnings are the lines for the deploy's log about From: new connections
// held back long enough that a client's SYN was dropped twice, and what
// the script warned of (with the connections it lists, indented).
func (r Report) Warnings() []string {
	var w []string
	if r.HeldMS >= 1000 {
		w = append(w, fmt.Sprintf("warning: new connections were held back %d ms: a client that connected then waited 3 s for its SYN to be sent a third time", r.HeldMS))
	}
	for _, l := range strings.Split(r.Output, "\n") {
		if strings.HasPrefix(l, "warning:") || strings.HasPrefix(l, "  ") {
			w = append(w, l)
		}
	}
	return w
}
