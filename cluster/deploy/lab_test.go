package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/lab"
	"gitlab.com/debship/debship/cluster/lab/labtest"
	"gitlab.com/debship/debship/cluster/progress"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/loadgen"
	"gitlab.com/debship/debship/internal/testenv"
	"gitlab.com/debship/debship/internal/testlog"
)

// watcher passes events to the test log and calls on for each.
type watcher struct {
	progress.Progress
	on func(progress.Event)
}

func (w watcher) Event(e progress.Event) {
	w.Progress.Event(e)
	if w.on != nil {
		w.on(e)
	}
}

type labEnv struct {
	t   *testing.T
	l   *lab.Lab
	inv *inventory.Inventory
}

func (e *labEnv) options(t *testing.T, deb string) Options {
	return Options{
		Inventory: e.inv, Deb: deb, Holder: "lab-test", Host: "test-host",
		Connect:  inventory.ConnectOptions{Timeout: 5 * time.Second, Attempts: 1},
		Health:   HealthCheck{Retries: 8, Interval: 500 * time.Millisecond, Timeout: 3 * time.Second},
		Settle:   90 * time.Second,
		Progress: progress.LinesProgress(testlog.Writer(t)),
	}
}

// healthz asks a node itself (not the floating IP) for its /healthz.
func (e *labEnv) healthz(node string) (string, error) {
	n, _ := e.inv.Node(node)
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/healthz", n.Address, e.inv.App.Port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))), nil
}

// built is the Debian version a build for the tests' lab writes for v:
// every build carries its target.
func built(t *testing.T, v string) string {
	t.Helper()
	return debversion.TargetVersion(v, labtest.Release(t))
}

// expectVersion checks that every node runs version (dpkg) and says so on
// /healthz.
func (e *labEnv) expectVersion(t *testing.T, deb, upstream string) {
	t.Helper()
	for _, n := range e.inv.Members() {
		if v := labtest.Sh(t, e.inv, n.Name, "dpkg-query -W -f='${Version}' hello-web"); v != deb {
			t.Errorf("%s has hello-web %s installed, want %s", n.Name, v, deb)
		}
		if h, err := e.healthz(n.Name); err != nil || h != "200 ok "+upstream {
			t.Errorf("%s /healthz: %q %v, want 200 ok %s", n.Name, h, err, upstream)
		}
	}
}

// maxLatency bounds the slowest request of every client kind during a
// deploy: the "no request slower than 1 s". A connection opened
// while the floating IP moves is passed on to the new holder (see
// move-ip.sh), not dropped; a dropped SYN would cost the client 1 s.
const maxLatency = time.Second

// history reads the nodes' deploy history, as entries and as
// `cluster history` prints it.
func (e *labEnv) history(t *testing.T) ([]Entry, string) {
	t.Helper()
	ctx := context.Background()
	conns, errs := inventory.Connect(ctx, e.inv, inventory.ConnectOptions{Timeout: 5 * time.Second})
	defer inventory.CloseAll(conns)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	entries, err := History(ctx, e.inv, conns)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	WriteHistory(&sb, entries)
	return entries, sb.String()
}

// clients is one load per client kind, each at 50 requests/s to the
// floating IP, all at once: a deploy is measured for every kind in one run.
type clients map[loadgen.Kind]*loadgen.Load

func (e *labEnv) clients() clients {
	c := clients{}
	for _, k := range loadgen.Kinds {
		// Outside CI a client this host cannot run is left out; in CI it
		// runs, and its load's error fails the test in finish.
		if err := loadgen.Ready(k); err != nil && !testenv.InCI() {
			e.t.Logf("client %s left out (outside CI): %v", k, err)
			continue
		}
		c[k] = e.loadOf(k)
	}
	return c
}

// load is the client that opens a connection per request alone.
func (e *labEnv) load() *loadgen.Load { return e.loadOf(loadgen.KindNew) }

// runUnderLoad runs a deploy or rollback while the connection-per-request
// client loads the floating IP (from 2 s before), and checks what that
// client saw (see finish).
func (e *labEnv) runUnderLoad(t *testing.T, o Options, min int, what string) (*Result, error) {
	t.Helper()
	load := e.load()
	time.Sleep(2 * time.Second)
	res, err := Run(context.Background(), o)
	logResult(t, res)
	finish(t, load, min, what)
	return res, err
}

func (e *labEnv) loadOf(k loadgen.Kind) *loadgen.Load {
	return loadgen.Start(context.Background(), loadgen.Options{
		URL:  fmt.Sprintf("http://%s:%d/", e.inv.FloatingPrefix().Addr(), e.inv.App.Port),
		Kind: k, Rate: 50, Timeout: 2 * time.Second, Duration: 4 * time.Minute,
	})
}

// finish is clients.finish for a load of its own, without counting the
// floating IP's moves.
func finish(t *testing.T, l *loadgen.Load, min int, what string) loadgen.Report {
	t.Helper()
	return clients{loadgen.KindNew: l}.finish(t, min, -1, what)[loadgen.KindNew]
}

// finish stops the loads once each has at least min requests and checks
// what their users saw: no failed request for the client that opens a
// connection per request and for those that retry an idempotent request
// on a stale connection (Go's and urllib3's); for the pool that never re-sends a request, at
// most one lost request per connection and floating IP move (a request
// written just as its connection goes away); the slowest request under
// maxLatency; the answering node changed once per move (moves < 0: not
// counted).
func (c clients) finish(t *testing.T, min, moves int, what string) map[loadgen.Kind]loadgen.Report {
	t.Helper()
	reports := map[loadgen.Kind]loadgen.Report{}
	for _, k := range loadgen.Kinds {
		l, ok := c[k]
		if !ok {
			continue
		}
		for deadline := time.Now().Add(time.Minute); len(l.Samples()) < min && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		r := l.Stop()
		reports[k] = r
		t.Logf("LOAD %s, client %s: %s", what, k, r)
		for _, s := range l.Samples() {
			if !s.OK() || s.Latency > maxLatency/3 {
				t.Logf("%s request at %s: %q (HTTP %d after %s, reused connection: %v)", k, s.Start.Format("15:04:05.000"), s.Err, s.Status, s.Latency.Round(time.Millisecond), s.Reused)
			}
		}
		allowed := 0
		if k == loadgen.KindPool && moves > 0 {
			allowed = moves * loadgen.PoolSize
		}
		if r.Failed > allowed {
			t.Errorf("%s, client %s: %d of %d requests failed, want at most %d", what, k, r.Failed, r.Requests, allowed)
		}
		if r.Requests < min {
			t.Errorf("%s, client %s: only %d requests", what, k, r.Requests)
		}
		if r.Max > maxLatency {
			t.Errorf("%s, client %s: the slowest request took %s, want under %s", what, k, r.Max.Round(time.Millisecond), maxLatency)
		}
		if moves >= 0 && r.HostSwitches() != moves {
			t.Errorf("%s, client %s: answered by %q, want %d switches", what, k, r.Hosts, moves)
		}
	}
	return reports
}

func logResult(t *testing.T, r *Result) {
	t.Helper()
	if r == nil {
		return
	}
	var nodes []string
	for _, n := range r.Nodes {
		var steps []string
		for _, k := range []string{"out_of_service", "install", "start", "health"} {
			if v, ok := n.Steps[k]; ok {
				steps = append(steps, fmt.Sprintf("%s %.1fs", k, v))
			}
		}
		nodes = append(nodes, fmt.Sprintf("%s %s in %.1fs (%s)", n.Node, n.Outcome, n.Took, strings.Join(steps, ", ")))
	}
	t.Logf("RESULT %s %s: %s in %.1fs; floating IP moves %d (%s); nodes: %s", r.Kind, r.Version, r.Outcome, r.Took, r.IPMoves, r.IPMoved, strings.Join(nodes, "; "))
}

// nothingChanged checks the cluster is as before a refused deploy: the
// versions, no lock, no staged copies, no bans, no history.
// deployState is what a deploy changes on a node: the installed version,
// a staged .deb, the history's length and pacemaker bans (cli- constraints).
const deployState = "dpkg-query -W -f='${Version}' hello-web; echo; test -e /var/cache/debship/incoming && echo staged || echo nothing staged; wc -l < " + HistoryFile + " 2>/dev/null || echo 0; cibadmin --query --scope constraints | grep -c cli- || true"

func (e *labEnv) nothingChanged(t *testing.T, version string, histLines string) {
	t.Helper()
	want := map[string]string{}
	for _, n := range e.inv.Members() {
		want[n.Name] = version + "\nnothing staged\n" + histLines + "\n0"
	}
	e.unchangedSince(t, want)
}

// snapshot is deployState on every node, for unchangedSince.
func (e *labEnv) snapshot(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range e.inv.Members() {
		m[n.Name] = labtest.Sh(t, e.inv, n.Name, deployState)
	}
	return m
}

// unchangedSince fails when a node's deployState differs from want, or the
// deploy lock is held: a refused deploy must leave both as they were.
func (e *labEnv) unchangedSince(t *testing.T, want map[string]string) {
	t.Helper()
	for _, n := range e.inv.Members() {
		if out := labtest.Sh(t, e.inv, n.Name, deployState); out != want[n.Name] {
			t.Errorf("%s changed by a refused deploy:\n%s\nwant:\n%s", n.Name, out, want[n.Name])
		}
	}
	if l, err := ReadLock(context.Background(), e.conn(t, "node1")); err != nil || l != nil {
		t.Errorf("lock after a refused deploy: %v %v", l, err)
	}
}

func (e *labEnv) conn(t *testing.T, node string) transport.Transport {
	t.Helper()
	n, _ := e.inv.Node(node)
	c, err := transport.Dial(context.Background(), e.inv.SSHConfig(n, inventory.ConnectOptions{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestDeployLab is the acceptance list on a two-node lab, in
// order: each step starts from the state the previous one left.
func TestDeployLab(t *testing.T) {
	v2 := labtest.BuildExample(t, labtest.Release(t), "2.0.0", nil)
	// v3 answers /healthz with 500: its service runs, its health check fails.
	v3 := labtest.BuildExample(t, labtest.Release(t), "3.0.0", func(dir string) {
		labtest.ReplaceIn(t, filepath.Join(dir, "src/hello_web/server.py"),
			`start_response("200 OK", [("Content-Type", "text/plain")`, `start_response("500 Internal Server Error", [("Content-Type", "text/plain")`)
	})
	v4 := labtest.BuildExample(t, labtest.Release(t), "4.0.0", nil)
	other := makeDeb(t, "other-app", "2.0-1")
	corrupt := filepath.Join(t.TempDir(), "hello-web_2.0-1_all.deb")
	b, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(corrupt, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// The cluster as cluster apply --package v1 (labtest.AppliedVersion) leaves it.
	l := labtest.Applied(t, 2, labtest.Release(t))
	inv, _ := labtest.Inventory(t, l)
	e := &labEnv{t: t, l: l, inv: inv}
	labtest.WaitServing(t, e.inv, 2*time.Minute)
	ctx := context.Background()

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"preflight failures change nothing", func(t *testing.T) {
			for _, c := range []struct{ name, deb, want string }{
				{"wrong package", other, `other-app_2.0-1_all.deb is the package "other-app", but the cluster runs "hello-web"`},
				{"corrupted .deb", corrupt, "is not a valid .deb"},
			} {
				_, err := Run(ctx, e.options(t, c.deb))
				var pe *PreflightError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: %v, want a preflight error with %q", c.name, err, c.want)
				}
				t.Logf("%s: %v", c.name, err)
			}
			// A node down (power loss): refused before anything changes.
			if err := l.Crash(ctx, "node2"); err != nil {
				t.Fatal(err)
			}
			_, err := Run(ctx, e.options(t, v2))
			var pe *PreflightError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), "node node2 is unreachable") {
				t.Errorf("node down: %v", err)
			}
			t.Logf("node down: %v", err)
			if err := l.Start(ctx, "node2"); err != nil {
				t.Fatal(err)
			}
			labtest.WaitServing(t, e.inv, 2*time.Minute)
			e.nothingChanged(t, built(t, "1.0-1"), "0")
		}},
		{"deploy v2 under load, a second deploy refused by the lock", func(t *testing.T) {
			load := e.clients()
			time.Sleep(2 * time.Second)
			holderSeen := make(chan struct{})
			var once sync.Once
			o := e.options(t, v2)
			o.Holder = "alice"
			o.Progress = watcher{o.Progress, func(ev progress.Event) {
				if ev.Step == "lock" && ev.Status == progress.StatusOK {
					once.Do(func() { close(holderSeen) })
				}
			}}
			var res *Result
			var derr error
			done := make(chan struct{})
			go func() { res, derr = Run(ctx, o); close(done) }()
			<-holderSeen
			o2 := e.options(t, v2)
			o2.Holder = "bob"
			_, err := Run(ctx, o2)
			var held *LockHeldError
			if !errors.As(err, &held) || held.Lock.Holder != "alice" || held.Lock.Host != "test-host" || held.Lock.Since.IsZero() ||
				!strings.Contains(err.Error(), "alice on test-host") || !strings.Contains(err.Error(), "--force-unlock") {
				t.Errorf("second deploy: %v", err)
			}
			t.Logf("second deploy while the first runs: %v", err)
			<-done
			logResult(t, res)
			if derr != nil {
				t.Fatalf("deploy v2: %v", derr)
			}
			r := load.finish(t, 2000, 1, "deploy v2")[loadgen.KindNew]
			if res.IPMoves != 1 || r.HostSwitches() != 1 {
				t.Errorf("the floating IP moved %d times (the load saw %d switches)", res.IPMoves, r.HostSwitches())
			}
			e.expectVersion(t, built(t, "2.0-1"), "2.0.0")
		}},
		{"v3 fails its health check: rolled back on the first node", func(t *testing.T) {
			st := labtest.WaitServing(t, e.inv, time.Minute)
			holder := st.IPHolder
			load := e.clients()
			time.Sleep(2 * time.Second)
			res, err := Run(ctx, e.options(t, v3))
			logResult(t, res)
			var de *Error
			if !errors.As(err, &de) || res.Outcome != OutcomeRolledBack {
				t.Fatalf("want a rolled-back deploy, got %v", err)
			}
			t.Logf("v3: %v", err)
			if len(res.Nodes) != 1 || res.Nodes[0].Node == holder || res.Nodes[0].Outcome != NodeRolledBack {
				t.Errorf("nodes: %+v (the IP was on %s)", res.Nodes, holder)
			}
			r := load.finish(t, 1000, 0, "deploy v3 (rolled back)")[loadgen.KindNew]
			if res.IPMoves != 0 || r.HostSwitches() != 0 || r.Hosts[0] != holder {
				t.Errorf("the floating IP moved: %d, answered by %q", res.IPMoves, r.Hosts)
			}
			if len(r.Versions) != 1 || r.Versions["2.0.0"] == 0 {
				t.Errorf("the floating IP served %v, want only 2.0.0", r.Versions)
			}
			e.expectVersion(t, built(t, "2.0-1"), "2.0.0")
			labtest.WaitServing(t, e.inv, time.Minute)
		}},
		{"rollback refused by a dead deploy's lock, then --force-unlock brings v1 back", func(t *testing.T) {
			dead := &Lock{ID: "20260101T000000Z-dead00", Holder: "ci-runner-7", Host: "gone-host", PID: 4242, Kind: KindDeploy, Version: "9.9-1", Since: time.Now().Add(-time.Hour)}
			if err := acquireLock(ctx, e.conn(t, "node1"), dead); err != nil {
				t.Fatal(err)
			}
			o := e.options(t, "")
			o.Kind = KindRollback
			_, err := Run(ctx, o)
			var held *LockHeldError
			if !errors.As(err, &held) || !strings.Contains(err.Error(), "ci-runner-7 on gone-host (pid 4242)") {
				t.Fatalf("rollback with a held lock: %v", err)
			}
			t.Logf("held lock: %v", err)
			load := e.clients()
			time.Sleep(2 * time.Second)
			o.ForceUnlock = true
			res, err := Run(ctx, o)
			logResult(t, res)
			if err != nil {
				t.Fatalf("rollback: %v", err)
			}
			if res.TakenOver == nil || res.TakenOver.Holder != "ci-runner-7" || res.Version != built(t, "1.0-1") {
				t.Errorf("rollback result: %+v", res)
			}
			r := load.finish(t, 1500, 1, "rollback to v1")[loadgen.KindNew]
			if r.HostSwitches() != 1 {
				t.Errorf("the floating IP moved %d times", r.HostSwitches())
			}
			e.expectVersion(t, built(t, "1.0-1"), "1.0.0")
		}},
		{"crash of the node being updated: the deploy stops, the other node serves", func(t *testing.T) {
			st := labtest.WaitServing(t, e.inv, time.Minute)
			holder := st.IPHolder
			load := e.clients()
			time.Sleep(2 * time.Second)
			o := e.options(t, v2)
			crashed := make(chan string, 1)
			var crashAt, stoppedAt time.Time
			o.Progress = watcher{o.Progress, func(ev progress.Event) {
				if ev.Step == "install" && ev.Status == progress.StatusRunning {
					select {
					case crashed <- ev.Node:
						crashAt = time.Now()
						if err := l.Crash(ctx, ev.Node); err != nil {
							t.Errorf("crash %s: %v", ev.Node, err)
						}
					default:
					}
				}
				if ev.Step == "install" && ev.Status == progress.StatusFailed {
					stoppedAt = time.Now()
				}
			}}
			t0 := time.Now()
			res, err := Run(ctx, o)
			logResult(t, res)
			node := <-crashed
			var de *Error
			if !errors.As(err, &de) || !strings.Contains(err.Error(), node+" left the cluster during install") {
				t.Fatalf("deploy with %s crashed: %v", node, err)
			}
			t.Logf("CRASH of %s during its install: noticed after %s, the deploy stopped after %s: %v", node,
				stoppedAt.Sub(crashAt).Round(100*time.Millisecond), time.Since(t0).Round(100*time.Millisecond), err)
			// Pacemaker notices in about token + consensus (2.2 s here); the
			// deploy must not wait for SSH's keepalive (40 s).
			if d := stoppedAt.Sub(crashAt); d > 15*time.Second {
				t.Errorf("the crash was noticed only after %s", d)
			}
			if node == holder {
				t.Errorf("the node updated first (%s) held the floating IP", node)
			}
			r := load.finish(t, 500, 0, "crash of "+node+" mid-deploy")[loadgen.KindNew]
			if r.HostSwitches() != 0 || r.Hosts[0] != holder {
				t.Errorf("the floating IP left %s: %q", holder, r.Hosts)
			}
			if err := l.Start(ctx, node); err != nil {
				t.Fatal(err)
			}
			// The crashed node stays banned until a deploy finishes it:
			// the next deploy resumes with it.
			labtest.WaitHealthy(t, e.inv, 2*time.Minute)
			load = e.clients()
			time.Sleep(2 * time.Second)
			res, err = Run(ctx, e.options(t, v2))
			logResult(t, res)
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			if res.Plan.Actions[0].Node != node || !res.Plan.Actions[0].Resume {
				t.Errorf("resume plan: %+v", res.Plan.Actions)
			}
			load.finish(t, 1500, 1, "deploy v2 after the crash")
			e.expectVersion(t, built(t, "2.0-1"), "2.0.0")
		}},
		{"webhook: a green tag pipeline deploys v4 through the receiver", func(t *testing.T) { webhookDeploy(t, e, v4) }},
		{"history lists the deploys and the rollback with outcomes", func(t *testing.T) {
			entries, text := e.history(t)
			t.Logf("history:\n%s", text)
			var got []string
			for _, en := range entries {
				got = append(got, en.Kind+" "+en.Version+" "+en.Outcome)
			}
			if last := entries[len(entries)-1]; !strings.HasPrefix(last.Holder, "webhook job ") || !strings.HasSuffix(last.Holder, "(v4.0.0)") {
				t.Errorf("the webhook's deploy is recorded as %q", last.Holder)
			}
			v1, v2, v3, v4 := built(t, "1.0-1"), built(t, "2.0-1"), built(t, "3.0-1"), built(t, "4.0-1")
			want := []string{"deploy " + v2 + " success", "deploy " + v3 + " rolled-back", "rollback " + v1 + " success", "deploy " + v2 + " failed", "deploy " + v2 + " success", "deploy " + v4 + " success"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			t.FailNow()
		}
	}
}
