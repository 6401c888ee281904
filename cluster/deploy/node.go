package deploy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/templates"
)

// errNodeLeft is the cause of a node step's cancellation when pacemaker
// says the node left the cluster (crashed, partitioned): its SSH session
// would otherwise only fail after the keepalive timeout.
var errNodeLeft = errors.New("the node left the cluster")

// watch returns a context cancelled (cause errNodeLeft) when pacemaker on
// the control node reports node offline.
func (d *deployment) watch(ctx context.Context, p *pcmk, node string) (context.Context, func()) {
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-wctx.Done():
				return
			case <-t.C:
				cctx, c := context.WithTimeout(wctx, 5*time.Second)
				s, err := readCrm(cctx, p.t)
				c()
				if err == nil && !s.online(node) {
					d.setGone(node)
					cancel(fmt.Errorf("%w (pacemaker on %s reports %s offline)", errNodeLeft, p.t.Node(), node))
					return
				}
			}
		}
	}()
	return wctx, func() { close(done); cancel(nil) }
}

// causeOf is err, or the cancellation cause of ctx when that is why err
// happened.
func causeOf(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && ctx.Err() != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

func nodeAddr(inv *inventory.Inventory, name string) string {
	n, _ := inv.Node(name)
	return n.Address
}

// healthyPeer checks that another node serves the app before node goes
// out of service: the one holding the floating IP answers its health
// check. Never stop the last healthy instance.
func (d *deployment) healthyPeer(ctx context.Context, p *pcmk, node string) error {
	s, err := readCrm(ctx, p.t)
	if err != nil {
		return err
	}
	d.state = s
	h := s.ipHolder()
	switch {
	case h == "":
		return errors.New("the floating IP runs nowhere; not taking another node out of service")
	case h == node:
		return fmt.Errorf("%s holds the floating IP; it is only updated after the IP moved", node)
	case !s.appOn(h):
		return fmt.Errorf("the app does not run on %s, which holds the floating IP", h)
	}
	hc := d.o.Health
	hc.Retries = 3
	r := checkHealth(ctx, d.conns[h], healthURL(nodeAddr(d.inv, h), d.inv.App.Port, d.inv.App.HealthPath), hc, "", "")
	if !r.OK {
		return fmt.Errorf("%s, the only node serving, fails its health check (%s); not taking %s out of service", h, r, node)
	}
	return nil
}

// update rolls one node: out of service, install, back in service,
// health check; on failure it rolls the node back.
func (d *deployment) update(ctx context.Context, a Action) NodeResult {
	n := a.Node
	start := time.Now()
	nr := NodeResult{Node: n, From: a.From, To: a.To, Steps: map[string]float64{}}
	cn, p := d.control(n)
	wctx, stop := d.watch(ctx, p, n)
	defer stop()
	t := d.conns[n]

	fail := func(step string, err error) NodeResult {
		err = causeOf(wctx, err)
		nr.Error = oneLine(err.Error())
		nr.Outcome = NodeFailed
		if errors.Is(err, errNodeLeft) {
			nr.Error = fmt.Sprintf("%s left the cluster during %s (crashed or cut off); it stays banned from running the app until a deploy or rollback finishes it", n, step)
		} else if rerr := d.rollbackNode(ctx, p, a); rerr != nil {
			nr.Error += "; rollback failed too: " + oneLine(rerr.Error()) + fmt.Sprintf("; %s stays out of service (constraint %s)", n, banID(n))
		} else {
			nr.Outcome = NodeRolledBack
		}
		nr.Took = time.Since(start).Seconds()
		return nr
	}

	// 1. Another node serves.
	end := d.step(n, "peer check", "the floating IP holder answers its health check")
	if err := d.healthyPeer(wctx, p, n); err != nil {
		end(err, "")
		nr.Outcome, nr.Error, nr.Took = nodeNotStarted, fmt.Sprintf("%s was not touched: %v", n, err), time.Since(start).Seconds()
		return nr
	}
	end(nil, "ok")

	// 2. Out of service: pacemaker stops the instance (the node holds no
	// floating IP, so no client is talking to it).
	end = d.step(n, "out of service", "ban the app on %s (via %s)", n, cn)
	if !a.Resume || d.state.appOn(n) {
		if err := p.banApp(wctx, n); err != nil {
			end(err, "")
			return fail("out of service", fmt.Errorf("taking %s out of service failed: %w", n, err))
		}
	}
	if _, err := p.waitFor(wctx, "the app to stop on "+n, func(s *crmState) bool { return !s.appOn(n) && s.ipHolder() != "" && s.ipHolder() != n }); err != nil {
		end(err, "")
		return fail("out of service", err)
	}
	if st, _ := host.ActiveState(wctx, t, d.inv.AppUnit()); st == "active" || st == "deactivating" {
		err := fmt.Errorf("pacemaker says the app stopped, but %s is %s", d.inv.AppUnit(), st)
		end(err, "")
		return fail("out of service", err)
	}
	nr.Steps["out_of_service"] = end(nil, "app stopped; %s serves alone", d.state.ipHolder())

	// 3. Install.
	end = d.step(n, "install", "apt-get install %s", d.deb.cacheName())
	ictx, cancel := context.WithTimeout(wctx, d.o.InstallTimeout)
	// An interrupted deploy may have cut dpkg off mid-install.
	err := host.InstallDeb(ictx, t, d.deb.cachePath(), host.DebOptions{Reinstall: a.From == d.deb.version, Repair: a.Resume})
	cancel()
	if err == nil {
		var v string
		v, err = host.InstalledVersion(wctx, t, d.inv.App.Package)
		if err == nil && v != d.deb.version {
			err = fmt.Errorf("apt-get finished but dpkg reports %s %q installed", d.inv.App.Package, v)
		}
	}
	if err != nil {
		end(causeOf(wctx, err), "")
		return fail("install", err)
	}
	nr.Steps["install"] = end(nil, "%s %s installed", d.deb.pkg, d.deb.version)

	// 3b. The migration, once per deploy, before the node takes traffic.
	mstart := time.Now()
	if err := d.migrate(wctx, t, n, &nr); err != nil {
		return fail("migrate", err)
	}
	if nr.Migration == MigrationRan {
		nr.Steps["migrate"] = time.Since(mstart).Seconds()
	}

	// 4. Back in service: pacemaker starts the new version.
	end = d.step(n, "start", "clear the ban; pacemaker starts the app")
	if err := p.clearApp(wctx, n, false); err != nil {
		end(err, "")
		return fail("start", err)
	}
	s, err := p.waitFor(wctx, "the app to start on "+n, func(s *crmState) bool { return s.appOn(n) || s.appFailedOn(n) })
	if err == nil && s.appFailedOn(n) {
		err = fmt.Errorf("pacemaker could not start %s on %s (see journalctl -u %s there)", d.inv.AppUnit(), n, d.inv.AppUnit())
	}
	if err != nil {
		end(err, "")
		return fail("start", err)
	}
	nr.Steps["start"] = end(nil, "running")

	// 5. Health check on the node's own address.
	url := healthURL(nodeAddr(d.inv, n), d.inv.App.Port, d.inv.App.HealthPath)
	end = d.step(n, "health", "GET %s", url)
	r := checkHealth(wctx, t, url, d.o.Health, d.deb.version, a.From)
	if !r.OK {
		err := fmt.Errorf("the health check failed: %s", r)
		end(err, "")
		return fail("health", err)
	}
	// A service that answered once and then died (pacemaker's monitor
	// notices it): look once more.
	if s, err := readCrm(wctx, p.t); err == nil && (s.appFailedOn(n) || !s.appOn(n)) {
		err := fmt.Errorf("the app answered but then stopped running on %s", n)
		end(err, "")
		return fail("health", err)
	}
	nr.Steps["health"] = end(nil, "%s", r)
	nr.Outcome = NodeUpdated
	nr.Took = time.Since(start).Seconds()
	d.log(n, "updated to %s in %.1fs", d.deb.version, nr.Took)
	return nr
}

// rollbackNode puts a node whose update failed back to the version it ran
// (its .deb is in the node's cache) and back in service. The other nodes
// are not touched.
func (d *deployment) rollbackNode(ctx context.Context, p *pcmk, a Action) error {
	n := a.Node
	end := d.step(n, "rollback", "back to %s", orNone(a.From))
	fail := func(err error) error { end(err, ""); return err }
	c := d.facts[n].deb(a.From)
	if a.From == "" || c == nil {
		return fail(fmt.Errorf("no .deb of the previous version %q on %s", a.From, n))
	}
	wctx, stop := d.watch(ctx, p, n)
	defer stop()
	if err := p.banApp(wctx, n); err != nil {
		return fail(err)
	}
	if _, err := p.waitFor(wctx, "the app to stop on "+n, func(s *crmState) bool { return !s.appOn(n) }); err != nil {
		return fail(causeOf(wctx, err))
	}
	ictx, cancel := context.WithTimeout(wctx, d.o.InstallTimeout)
	err := host.InstallDeb(ictx, d.conns[n], c.Path, host.DebOptions{})
	cancel()
	if err != nil {
		return fail(causeOf(wctx, err))
	}
	// Always clean up: the failed version may have left a fail count.
	if err := p.clearApp(wctx, n, true); err != nil {
		return fail(err)
	}
	if _, err := p.waitFor(wctx, "the app to start on "+n, func(s *crmState) bool { return s.appOn(n) }); err != nil {
		return fail(causeOf(wctx, err))
	}
	r := checkHealth(wctx, d.conns[n], healthURL(nodeAddr(d.inv, n), d.inv.App.Port, d.inv.App.HealthPath), d.o.Health, a.From, "")
	if !r.OK {
		return fail(fmt.Errorf("after the rollback the health check fails too: %s", r))
	}
	end(nil, "%s %s runs again, in service", d.deb.pkg, a.From)
	return nil
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

// The drain's limits besides Options.Drain (see move-ip.sh): a request
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

// moveIP hands the floating IP from one node to an updated one: the one
// user-visible moment of a deploy, and it happens once.
func (d *deployment) moveIP(ctx context.Context, from, to string) error {
	end := d.step(from, "move IP", "floating IP %s -> %s", from, to)
	fail := func(err error) error { end(err, ""); return err }
	p := &pcmk{t: d.conns[to], settle: d.o.Settle}
	s, err := readCrm(ctx, p.t)
	if err != nil {
		return fail(err)
	}
	if h := s.ipHolder(); h != from {
		return fail(fmt.Errorf("the floating IP is on %q, not on %s as planned", h, from))
	}
	if !s.appOn(to) {
		return fail(fmt.Errorf("the app does not run on %s", to))
	}
	hc := d.o.Health
	hc.Retries = 3
	if r := checkHealth(ctx, d.conns[to], healthURL(nodeAddr(d.inv, to), d.inv.App.Port, d.inv.App.HealthPath), hc, d.deb.version, ""); !r.OK {
		return fail(fmt.Errorf("%s fails its health check (%s); the floating IP stays on %s", to, r, from))
	}
	// Only an address that moves by ARP benefits: a reserved IP of a cloud
	// API keeps reaching the old node until the API has moved it, so
	// holding back connections there would only add to the wait.
	drain := d.inv.FloatingIP.Provider == inventory.ProviderIPaddr2 && d.o.Drain > 0
	// The new holder takes the connections the old one passes on during
	// the move (see handover.sh); without that, move-ip.sh holds them back.
	handover := false
	if drain {
		out, err := d.handover(ctx, to, false)
		handover = err == nil && strings.Contains(out, "handover=ready")
		if !handover {
			d.log(to, "warning: new connections are held back during the move (the client sends its SYN again after 1 s): %s", strings.TrimSpace(out+" "+errString(err)))
		}
		defer func() {
			if _, err := d.handover(context.WithoutCancel(ctx), to, true); err != nil {
				d.log(to, "warning: the handover rule stays: %v", err)
			}
		}()
	}
	script, err := renderMoveIP(map[string]any{
		"From": from, "To": to, "ToAddr": nodeAddr(d.inv, to), "VIP": d.inv.FloatingPrefix().Addr().String(), "Port": d.inv.App.Port,
		"Drain": drain, "Handover": handover, "DrainMS": d.o.Drain.Milliseconds(), "TimeoutMS": d.o.Settle.Milliseconds(),
		"LongMS": longRequest.Milliseconds(), "HoldMS": min(holdBack, d.o.Drain).Milliseconds(),
		"PassMS": min(passBack, d.o.Drain).Milliseconds(), "SettleMS": handoverSettle.Milliseconds(),
		"Resource": inventory.ResourceFloatingIP,
	})
	if err != nil {
		return fail(err)
	}
	out, err := transport.Output(ctx, d.conns[from], string(script))
	d.mu.Lock()
	d.ipMoves++
	d.mu.Unlock()
	if err != nil {
		// Whatever happened, do not leave the IP pinned.
		_ = p.clearIP(context.WithoutCancel(ctx))
		return fail(err)
	}
	if _, err := p.waitFor(ctx, "the floating IP to start on "+to, func(s *crmState) bool { return s.ipHolder() == to }); err != nil {
		_ = p.clearIP(context.WithoutCancel(ctx))
		return fail(err)
	}
	// Stickiness keeps it there without the move's constraint.
	if err := p.clearIP(ctx); err != nil {
		return fail(err)
	}
	d.res.IPMoved = from + " -> " + to
	msg := "moved"
	if m := drainedRE.FindStringSubmatch(out); m != nil {
		ms, _ := strconv.Atoi(m[1])
		msg = fmt.Sprintf("in-flight requests drained in %d ms", ms)
	}
	if m := resetRE.FindStringSubmatch(out); m != nil && m[1] != "0" {
		msg += ", " + m[1] + " kept-alive connections reset once idle"
		if h := segmentsRE.FindStringSubmatch(out); h != nil && h[1] != "0" {
			msg += " (" + h[1] + " segments of requests on them held back, for the clients to send again)"
		}
	}
	if m := releasedRE.FindStringSubmatch(out); m != nil {
		msg += ", released by " + from + " after " + m[1] + " ms"
	}
	if m := handedRE.FindStringSubmatch(out); m != nil {
		msg += ", new connections passed on to " + to + " for " + m[1] + " ms"
		if p := passedRE.FindStringSubmatch(out); p != nil {
			msg += " (" + p[1] + " packets; none held back)"
		}
	}
	if m := heldRE.FindStringSubmatch(out); m != nil {
		msg += ", new connections held back " + m[1] + " ms"
		if ms, _ := strconv.Atoi(m[1]); ms >= 1000 {
			d.log(from, "warning: new connections were held back %d ms: a client that connected then waited 3 s for its SYN to be sent a third time", ms)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		// A warning and the connections it lists (indented).
		if strings.HasPrefix(l, "warning:") || strings.HasPrefix(l, "  ") {
			d.log(from, "%s", l)
		}
	}
	end(nil, "%s; now on %s", msg, to)
	return nil
}

// renderMoveIP renders move-ip.sh with the files it carries: busy.awk and
// quiesce.sh.
func renderMoveIP(vars map[string]any) ([]byte, error) {
	for key, name := range map[string]string{"BusyAwk": "deploy/busy.awk", "Quiesce": "deploy/quiesce.sh"} {
		b, err := templates.Raw(name)
		if err != nil {
			return nil, err
		}
		vars[key] = string(b)
	}
	return templates.Render("deploy/move-ip.sh", vars)
}

// clearLeftovers removes on every member the rules a killed move left
// behind (see leftovers.sh). The deploy lock is held: no move is running.
func (d *deployment) clearLeftovers(ctx context.Context) {
	script, err := templates.Raw("deploy/leftovers.sh")
	if err != nil {
		d.log("", "warning: %v", err)
		return
	}
	for _, n := range d.members() {
		out, err := transport.Output(ctx, d.conns[n], string(script))
		if err != nil {
			d.log(n, "warning: could not look for rules a killed floating IP move left behind: %v", err)
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l != "" {
				d.log(n, "warning: a floating IP move was killed before it cleaned up; %s", l)
			}
		}
	}
}

// handover adds (or removes) on the IP's new holder the rule that takes
// the connections the old holder passes on during the move.
func (d *deployment) handover(ctx context.Context, to string, remove bool) (string, error) {
	script, err := templates.Render("deploy/handover.sh", map[string]any{
		"To": to, "VIP": d.inv.FloatingPrefix().Addr().String(), "Addr": nodeAddr(d.inv, to), "Port": d.inv.App.Port, "Remove": remove,
	})
	if err != nil {
		return "", err
	}
	return transport.Output(ctx, d.conns[to], string(script))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
