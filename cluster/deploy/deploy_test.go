package deploy

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/progress"
	"gitlab.com/debship/debship/debbuild/debfile"
)

func TestMakePlan(t *testing.T) {
	for _, c := range []struct {
		name      string
		in        PlanInput
		want      []string // "update node2", "move-ip node1->node2"
		current   []string
		wantMoves int
	}{
		{"holder node1: passive node2 first, one move",
			PlanInput{Version: "2", Members: []string{"node1", "node2"}, Holder: "node1", Installed: map[string]string{"node1": "1", "node2": "1"}},
			[]string{"update node2", "move-ip node1->node2", "update node1"}, nil, 1},
		{"holder node2: node1 first",
			PlanInput{Version: "2", Members: []string{"node1", "node2"}, Holder: "node2", Installed: map[string]string{"node1": "1", "node2": "1"}},
			[]string{"update node1", "move-ip node2->node1", "update node2"}, nil, 1},
		{"passive already current: the IP moves to it, no update there",
			PlanInput{Version: "2", Members: []string{"node1", "node2"}, Holder: "node1", Installed: map[string]string{"node1": "1", "node2": "2"}},
			[]string{"move-ip node1->node2", "update node1"}, []string{"node2"}, 1},
		{"holder already current: the IP does not move",
			PlanInput{Version: "2", Members: []string{"node1", "node2"}, Holder: "node1", Installed: map[string]string{"node1": "2", "node2": "1"}},
			[]string{"update node2"}, []string{"node1"}, 0},
		{"everything current: nothing to do",
			PlanInput{Version: "2", Members: []string{"node1", "node2"}, Holder: "node2", Installed: map[string]string{"node1": "2", "node2": "2"}},
			nil, []string{"node1", "node2"}, 0},
		{"three members: both passive first, one move to the first updated",
			PlanInput{Version: "2", Members: []string{"a", "b", "c"}, Holder: "b", Installed: map[string]string{"a": "1", "b": "1", "c": "1"}},
			[]string{"update a", "update c", "move-ip b->a", "update b"}, nil, 1},
		{"a node left out of service by an interrupted deploy comes first, even at the version",
			PlanInput{Version: "2", Members: []string{"a", "b", "c"}, Holder: "a", Installed: map[string]string{"a": "1", "b": "1", "c": "2"},
				OutOfService: map[string]bool{"c": true}},
			[]string{"update c", "update b", "move-ip a->c", "update a"}, nil, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := MakePlan(c.in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range p.Actions {
				if a.Action == ActionMoveIP {
					got = append(got, "move-ip "+a.Node+"->"+a.To)
				} else {
					got = append(got, "update "+a.Node)
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("actions %q, want %q", got, c.want)
			}
			if !reflect.DeepEqual(p.Current, c.current) {
				t.Errorf("current %q, want %q", p.Current, c.current)
			}
			if p.IPMoves() != c.wantMoves {
				t.Errorf("%d moves of the floating IP, want %d", p.IPMoves(), c.wantMoves)
			}
			// The IP is never moved to a node before it was updated (or
			// current), and the node holding it is never updated while it
			// holds it.
			done := map[string]bool{}
			for _, n := range p.Current {
				done[n] = true
			}
			holder := c.in.Holder
			for _, a := range p.Actions {
				switch a.Action {
				case ActionMoveIP:
					if !done[a.To] {
						t.Errorf("the IP moves to %s before it runs the version", a.To)
					}
					holder = a.To
				case ActionUpdate:
					if a.Node == holder {
						t.Errorf("%s is updated while it holds the floating IP", a.Node)
					}
					done[a.Node] = true
				}
			}
		})
	}
	for _, in := range []PlanInput{
		{Version: "2", Members: []string{"node1"}, Holder: "node1"},
		{Version: "2", Members: []string{"node1", "node2"}, Holder: ""},
		{Version: "2", Members: []string{"node1", "node2"}, Holder: "quorum"},
	} {
		if _, err := MakePlan(in); err == nil {
			t.Errorf("MakePlan(%+v) should fail", in)
		}
	}
}

// events collects progress events.
type events struct {
	mu sync.Mutex
	l  []progress.Event
}

func (e *events) Event(ev progress.Event) { e.mu.Lock(); e.l = append(e.l, ev); e.mu.Unlock() }
func (e *events) Close()                  {}

func fakeOptions(f *fakeCluster, t *testing.T, deb string) (Options, *events) {
	ev := &events{}
	return Options{
		Inventory: f.inventory(t), Conns: f.conns(), Deb: deb, Holder: "tester", Host: "testhost",
		Health: HealthCheck{Retries: 3, Interval: 5 * time.Millisecond},
		Settle: 2 * time.Second, Progress: ev,
	}, ev
}

// changing are commands that change a node (not reads).
const changing = `crm_resource --(ban|clear|cleanup|move)|apt-get install -y|move-ip|cibadmin --(create|delete)|upload|>> /var/lib/debship|mv -f`

func TestRunFakeRollingDeploy(t *testing.T) {
	f, v2 := fakeUpgrade(t)
	o, ev := fakeOptions(f, t, v2)
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("deploy: %v\nran:\n%s", err, strings.Join(f.ran, "\n"))
	}
	if res.Outcome != OutcomeSuccess || res.IPMoves != 1 || res.IPMoved != "node1 -> node2" || f.ipMoves != 1 {
		t.Errorf("result %+v, the fake saw %d moves", res, f.ipMoves)
	}
	for _, n := range f.nodes {
		if f.inst[n] != "2.0-1" || !f.running(n) || f.banned[n] {
			t.Errorf("%s: installed %q running %v banned %v", n, f.inst[n], f.running(n), f.banned[n])
		}
	}
	// The passive node first; the IP moves after it is healthy and before
	// the other node is banned.
	var order []string
	for _, c := range f.commands(`crm_resource --ban|# move-ip|apt-get install -y`) {
		switch {
		case strings.Contains(c, "--ban"):
			order = append(order, "ban "+reNode.FindStringSubmatch(c)[1])
		case strings.Contains(c, "move-ip"):
			order = append(order, "move-ip on "+strings.SplitN(c, ":", 2)[0])
		default:
			order = append(order, "install on "+strings.SplitN(c, ":", 2)[0])
		}
	}
	want := []string{"ban node2", "install on node2", "move-ip on node1", "ban node1", "install on node1"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
	if f.lock != "" || f.prefer != "" {
		t.Errorf("left behind: lock %q, prefer %q", f.lock, f.prefer)
	}
	// Both .debs stay in the cache for rollback; the staging dir is empty.
	for _, n := range f.nodes {
		var have []string
		for p := range f.files[n] {
			have = append(have, p)
		}
		if len(have) != 2 || f.files[n]["/var/cache/debship/hello-web_2.0-1_all.deb"] == nil || f.files[n]["/var/cache/debship/hello-web_1.0-1_all.deb"] == nil {
			t.Errorf("%s cache: %q", n, have)
		}
		if len(f.history[n]) != 2 || !strings.Contains(f.history[n][1], `"outcome":"success"`) {
			t.Errorf("%s history: %q", n, f.history[n])
		}
	}
	// Progress: a step event for each node step, a result last.
	last := ev.l[len(ev.l)-1]
	if last.Type != progress.EventResult || last.Result == nil {
		t.Errorf("last event %+v", last)
	}
	// A second deploy of the same version has nothing to do.
	o, _ = fakeOptions(f, t, v2)
	res, err = Run(context.Background(), o)
	if err != nil || res.Outcome != OutcomeNothing {
		t.Errorf("second deploy: %+v %v", res, err)
	}
	// History shows one deploy.
	entries, err := History(context.Background(), f.inventory(t), f.conns())
	if err != nil || len(entries) != 1 || entries[0].Outcome != OutcomeSuccess || entries[0].From["node1"] != "1.0-1" || len(entries[0].Seen) != 2 {
		t.Errorf("history %+v %v", entries, err)
	}

	// Rollback: back to 1.0-1, same procedure; the .deb comes from a node.
	o, _ = fakeOptions(f, t, "")
	o.Kind = KindRollback
	f.ipMoves = 0
	res, err = Run(context.Background(), o)
	if err != nil || res.Version != "1.0-1" || res.Outcome != OutcomeSuccess {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	for _, n := range f.nodes {
		if f.inst[n] != "1.0-1" {
			t.Errorf("%s runs %s after the rollback", n, f.inst[n])
		}
	}
	if f.ipMoves != 1 || res.IPMoved != "node2 -> node1" {
		t.Errorf("rollback moved the IP %d times (%s)", f.ipMoves, res.IPMoved)
	}
	entries, _ = History(context.Background(), f.inventory(t), f.conns())
	if len(entries) != 2 || entries[1].Kind != KindRollback || entries[1].Outcome != OutcomeSuccess {
		t.Errorf("history after rollback: %+v", entries)
	}
}

func TestRunFakeHealthFailsRollsBack(t *testing.T) {
	v2 := makeDeb(t, "hello-web", "2.0-1")
	v3 := makeDeb(t, "hello-web", "3.0-1")
	for _, c := range []struct {
		name   string
		break_ func(f *fakeCluster)
		want   string
	}{
		{"health 500", func(f *fakeCluster) { f.bad["3.0-1"] = 500 }, "health"},
		{"service does not start", func(f *fakeCluster) { f.noStart["3.0-1"] = true }, "pacemaker could not start"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeCluster("2.0-1")
			f.seed(t, v2)
			c.break_(f)
			o, _ := fakeOptions(f, t, v3)
			res, err := Run(context.Background(), o)
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("want *Error, got %v", err)
			}
			if res.Outcome != OutcomeRolledBack || !strings.Contains(res.Message, c.want) || !strings.Contains(res.Message, "node2 was rolled back to 2.0-1") {
				t.Errorf("result: %s: %s", res.Outcome, res.Message)
			}
			if f.inst["node2"] != "2.0-1" || !f.running("node2") || f.inst["node1"] != "2.0-1" || !f.running("node1") {
				t.Errorf("after rollback: %v, running %v %v", f.inst, f.running("node1"), f.running("node2"))
			}
			if f.ipMoves != 0 || f.holder != "node1" {
				t.Errorf("the floating IP moved (%d, on %s)", f.ipMoves, f.holder)
			}
			if cmds := f.commands(`^node1: .*(` + changing + `)`); len(cmds) > 0 {
				// node1 holds the lock commands (control node) and history; only
				// its own app must be untouched.
				for _, c := range cmds {
					if strings.Contains(c, "--node node1") || strings.Contains(c, "apt-get install -y") || strings.Contains(c, "move-ip") {
						t.Errorf("node1 was touched: %s", c)
					}
				}
			}
			if f.lock != "" || f.banned["node2"] || f.failed["node2"] {
				t.Errorf("left behind: lock %q banned %v failed %v", f.lock, f.banned["node2"], f.failed["node2"])
			}
			if !strings.Contains(f.history["node1"][1], `"outcome":"rolled-back"`) {
				t.Errorf("history: %q", f.history["node1"])
			}
		})
	}
}

func TestRunFakePreflightChangesNothing(t *testing.T) {
	v1 := makeDeb(t, "hello-web", "1.0-1")
	v2 := makeDeb(t, "hello-web", "2.0-1")
	other := makeDeb(t, "other-app", "2.0-1")
	forBookworm := makeDeb(t, "hello-web", "2.0-1+deb12u1")
	forTrixie := makeDeb(t, "hello-web", "2.0-1+deb13u1")
	systemdMode := makeDebWith(t, "hello-web", "2.0-1", debfile.TreePackage{Fields: map[string]string{debfile.ModeField: debfile.ModeSystemd}})
	for _, c := range []struct {
		name  string
		deb   string
		setup func(f *fakeCluster)
		want  string
	}{
		{"wrong package", other, nil, `is the package "other-app", but the cluster runs "hello-web"`},
		{"built for another release", forBookworm, nil,
			"hello-web_2.0-1+deb12u1_all.deb is built for debian-12, but node1 runs Debian 13; deploy its build for debian-13 (debship build --target debian-13)"},
		{"one node on another release", forTrixie, func(f *fakeCluster) { f.release["node2"] = 12 },
			"hello-web_2.0-1+deb13u1_all.deb is built for debian-13, but node2 runs Debian 12; deploy its build for debian-12 (debship build --target debian-12)"},
		{"a release debship does not build for", forTrixie, func(f *fakeCluster) { f.release["node1"] = 14 },
			"hello-web_2.0-1+deb13u1_all.deb is built for debian-13, but node1 runs Debian 14, which debship does not build for (debian-13, debian-12)"},
		{"built in mode systemd", systemdMode, nil,
			`hello-web_2.0-1_all.deb was built in mode "systemd": its postinst enables and starts hello-web.service, which would run outside pacemaker; set mode = "cluster" under [tool.debship] in pyproject.toml`},
		{"node offline", v2, func(f *fakeCluster) { f.offline["node2"] = true }, "node2 is offline in pacemaker"},
		{"lock held", v2, func(f *fakeCluster) {
			f.lock = (&Lock{ID: "x", Holder: "alice", Host: "laptop", PID: 42, Kind: KindDeploy, Version: "1.5-1", Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}).xml()
		}, "another deploy holds the deploy lock: alice on laptop (pid 42) since 2026-01-02"},
		{"dependencies", v2, func(f *fakeCluster) { f.aptFails["2.0-1"] = true }, "node1 cannot install hello-web 2.0-1: hello-web : Depends: libfoo but it is not installable"},
		{"no previous .deb", v2, func(f *fakeCluster) {
			for _, n := range f.nodes {
				f.files[n] = map[string][]byte{}
			}
		}, "node1 runs hello-web 1.0-1 but has no copy of its .deb"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeCluster("1.0-1")
			f.seed(t, v1)
			if c.setup != nil {
				c.setup(f)
			}
			lockBefore := f.lock
			o, ev := fakeOptions(f, t, c.deb)
			_, err := Run(context.Background(), o)
			var pe *PreflightError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want a preflight error with %q, got %v", c.want, err)
			}
			if last := ev.l[len(ev.l)-1]; last.Type != progress.EventResult || last.Result.(*Result).Outcome != OutcomeRefused {
				t.Errorf("last event: %+v", last)
			}
			if !strings.HasPrefix(err.Error(), "preflight failed, nothing was changed") {
				t.Errorf("message: %v", err)
			}
			for _, n := range f.nodes {
				if f.inst[n] != "1.0-1" || len(f.history[n]) != 0 {
					t.Errorf("%s changed: %s, history %q", n, f.inst[n], f.history[n])
				}
				for p := range f.files[n] {
					if strings.Contains(p, "incoming") || strings.Contains(p, "2.0-1") {
						t.Errorf("%s keeps %s", n, p)
					}
				}
			}
			if f.lock != lockBefore {
				t.Errorf("lock changed: %q", f.lock)
			}
			if cmds := f.commands(`crm_resource --(ban|clear|cleanup)|move-ip|apt-get install -y`); len(cmds) > 0 {
				t.Errorf("changed the cluster: %q", cmds)
			}
			if c.name == "lock held" {
				var held *LockHeldError
				if !errors.As(err, &held) || held.Lock.Holder != "alice" {
					t.Errorf("errors.As LockHeldError: %v", err)
				}
				// --force-unlock takes it over and deploys.
				o.ForceUnlock = true
				res, err := Run(context.Background(), o)
				if err != nil || res.TakenOver == nil || res.TakenOver.Holder != "alice" || f.lock != "" {
					t.Errorf("force-unlock: %+v %v lock %q", res, err, f.lock)
				}
			}
		})
	}
}

// TestRunFakeRollbackToSystemdMode: a rollback to a version whose .deb
// (built by an older debship, so with no X-Debship-Mode field) has a
// postinst that starts the app is refused like such a deploy, and says how
// to roll back instead; nothing changes.
func TestRunFakeRollbackToSystemdMode(t *testing.T) {
	old := makeDebWith(t, "hello-web", "1.0-1", debfile.TreePackage{Scripts: map[string][]byte{
		"postinst": []byte("#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n\tdeb-systemd-invoke $_action 'hello-web.service' >/dev/null || true\nfi\n"),
	}})
	cur := makeDebWith(t, "hello-web", "2.0-1", debfile.TreePackage{Fields: map[string]string{debfile.ModeField: debfile.ModeCluster}})
	f := newFakeCluster("2.0-1")
	f.seed(t, old)
	f.seed(t, cur)
	o, _ := fakeOptions(f, t, "")
	o.Kind = KindRollback
	_, err := Run(context.Background(), o)
	want := `hello-web_1.0-1_all.deb was built in mode "systemd": its postinst enables and starts hello-web.service, which would run outside pacemaker; roll back to a version built in mode "cluster" (--to VERSION), or set mode = "cluster"`
	var pe *PreflightError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) {
		t.Fatalf("want a preflight error with %q, got %v", want, err)
	}
	for _, n := range f.nodes {
		if f.inst[n] != "2.0-1" || len(f.history[n]) != 0 {
			t.Errorf("%s changed: %s, history %q", n, f.inst[n], f.history[n])
		}
	}
	if cmds := f.commands(`crm_resource --(ban|clear|cleanup)|move-ip|apt-get install -y|cibadmin --create`); len(cmds) > 0 {
		t.Errorf("changed the cluster: %q", cmds)
	}
}

func TestRunFakeDryRun(t *testing.T) {
	f, v2 := fakeUpgrade(t)
	f.holder = "node2"
	o, ev := fakeOptions(f, t, v2)
	o.DryRun = true
	res, err := Run(context.Background(), o)
	if err != nil || res.Outcome != "dry-run" || len(res.Plan.Actions) != 3 || res.Plan.Actions[0].Node != "node1" {
		t.Fatalf("%+v %v", res, err)
	}
	if cmds := f.commands(changing); len(cmds) > 0 {
		t.Errorf("a dry run changed: %q", cmds)
	}
	plans := 0
	for _, e := range ev.l {
		if e.Type == progress.EventPlan {
			plans++
		}
	}
	if plans != 3 {
		t.Errorf("%d plan events", plans)
	}
}

func TestNamesVersion(t *testing.T) {
	for _, c := range []struct {
		body, deb string
		want      bool
	}{
		{"ok 2.0.0\n", "2.0-1", true},
		{"ok 1.4.0", "1.4-1", true},
		{"ok 1.5.0rc1", "1.5~rc1-1", true},
		{"ok 1.4.0", "2.0-1", false},
		{"ok", "2.0-1", false},
		{`{"version": "3.1.2", "status": "ok"}`, "1:3.1.2-2", true},
	} {
		if got := namesVersion(c.body, c.deb); got != c.want {
			t.Errorf("namesVersion(%q, %q) = %v", c.body, c.deb, got)
		}
	}
}

func TestLockXMLRoundTrip(t *testing.T) {
	l := &Lock{ID: "20260101T000000Z-abcdef", Holder: `o'brien & "co" <ci>`, Host: "h", PID: 7, Kind: KindRollback, Version: "1:2.0-1", Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	got, err := parseLock([]byte(l.xml()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, l) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, l)
	}
}

func TestMergeHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	start := Record{ID: "a", Event: "start", Kind: KindDeploy, Version: "2", From: map[string]string{"n1": "1", "n2": "1"}, Time: t0}
	end := start
	end.Event, end.Outcome, end.Time = "end", OutcomeSuccess, t0.Add(time.Minute)
	b := Record{ID: "b", Event: "start", Kind: KindDeploy, Version: "3", Time: t0.Add(time.Hour)}
	c := Record{ID: "c", Event: "start", Kind: KindRollback, Version: "1", Time: t0.Add(2 * time.Hour)}
	// n2 missed the end of a (it was down); c holds the lock.
	got := mergeHistory(map[string][]Record{"n1": {start, end, b, c}, "n2": {start, b}}, &Lock{ID: "c"})
	if len(got) != 3 || got[0].Outcome != OutcomeSuccess || got[1].Outcome != OutcomeVanished || got[2].Outcome != OutcomeRunning {
		t.Fatalf("%+v", got)
	}
	if !reflect.DeepEqual(got[0].Seen, []string{"n1", "n2"}) {
		t.Errorf("seen %q", got[0].Seen)
	}
	var sb strings.Builder
	WriteHistory(&sb, got)
	if !strings.Contains(sb.String(), "success") || !strings.Contains(sb.String(), "interrupted") {
		t.Errorf("table:\n%s", sb.String())
	}
}

// A deploy interrupted after banning a node (killed, the node crashed)
// leaves it out of service; the next deploy updates it first and returns
// it, even when it already has the version.
func TestRunFakeResumesAnInterruptedDeploy(t *testing.T) {
	f, v2 := fakeUpgrade(t)
	f.seed(t, v2)
	f.inst["node2"] = "2.0-1"
	f.banned["node2"] = true
	o, _ := fakeOptions(f, t, v2)
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(f.ran, "\n"))
	}
	if a := res.Plan.Actions[0]; a.Node != "node2" || !a.Resume {
		t.Errorf("plan %+v", res.Plan.Actions)
	}
	if cmds := f.commands(`node2: .*dpkg --configure -a.*apt-get install -y .*--reinstall`); len(cmds) != 1 {
		t.Errorf("node2 not repaired and reinstalled: %q", f.commands(`node2: .*apt-get install -y`))
	}
	for _, n := range f.nodes {
		if f.inst[n] != "2.0-1" || !f.running(n) {
			t.Errorf("%s: %s running %v", n, f.inst[n], f.running(n))
		}
	}
}

// cancelOn cancels a context at the first event cond matches.
type cancelOn struct {
	events
	cond   func(progress.Event) bool
	cancel context.CancelFunc
}

func (c *cancelOn) Event(e progress.Event) {
	c.events.Event(e)
	if c.cond(e) {
		c.cancel()
	}
}

// Ctrl-C (or the webhook's shutdown) in the middle of a node's update: the
// node is finished, the deploy stops before the next step, every node is in
// service and the lock is released.
func TestRunFakeCancelFinishesTheNode(t *testing.T) {
	f, v2 := fakeUpgrade(t)
	o, _ := fakeOptions(f, t, v2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.Progress = &cancelOn{cond: func(e progress.Event) bool {
		return e.Node == "node2" && e.Step == "install" && e.Status == progress.StatusRunning
	}, cancel: cancel}
	res, err := Run(ctx, o)
	var de *Error
	if !errors.As(err, &de) || res.Outcome != OutcomeStopped || !strings.Contains(err.Error(), "node1 was not touched") {
		t.Fatalf("%v (%s)", err, res.Outcome)
	}
	if f.inst["node2"] != "2.0-1" || !f.running("node2") || f.inst["node1"] != "1.0-1" || !f.running("node1") || f.ipMoves != 0 {
		t.Errorf("after the stop: %v, moves %d", f.inst, f.ipMoves)
	}
	if f.lock != "" || !strings.Contains(f.history["node1"][1], `"outcome":"stopped"`) {
		t.Errorf("lock %q, history %q", f.lock, f.history["node1"])
	}
}
