package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/ipmove"
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
	m := ipmove.Move{
		From: from, To: to, ToAddr: nodeAddr(d.inv, to), VIP: d.inv.FloatingPrefix().Addr().String(), Port: d.inv.App.Port,
		Resource: inventory.ResourceFloatingIP, DrainFor: d.o.Drain, Settle: d.o.Settle,
		Drain: d.inv.FloatingIP.Provider == inventory.ProviderIPaddr2 && d.o.Drain > 0,
	}
	if m.Drain {
		// The new holder takes the connections the old one passes on during
		// the move; without that, new connections are held back.
		var why string
		if m.Handover, why = m.Take(ctx, d.conns[to]); !m.Handover {
			d.log(to, "warning: new connections are held back during the move (the client sends its SYN again after 1 s): %s", why)
		}
		defer func() {
			if err := m.Release(context.WithoutCancel(ctx), d.conns[to]); err != nil {
				d.log(to, "warning: the handover rule stays: %v", err)
			}
		}()
	}
	r, err := m.Run(ctx, d.conns[from])
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
	for _, w := range r.Warnings() {
		d.log(from, "%s", w)
	}
	end(nil, "%s; now on %s", r, to)
	return nil
}

// clearLeftovers removes on every member the rules a killed move left
// behind. The deploy lock is held: no move is running.
func (d *deployment) clearLeftovers(ctx context.Context) {
	for _, n := range d.members() {
		removed, err := ipmove.ClearLeftovers(ctx, d.conns[n])
		if err != nil {
			d.log(n, "warning: could not look for rules a killed floating IP move left behind: %v", err)
			continue
		}
		for _, l := range removed {
			d.log(n, "warning: a floating IP move was killed before it cleaned up; %s", l)
		}
	}
}
