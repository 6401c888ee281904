package deploy

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/lab/labtest"
	"gitlab.com/debship/debship/cluster/progress"
)

// TestDeploy3NodesLab is the recommended topology, two app nodes and the
// tie-breaker, under load from every client kind: a deploy, a failed
// health check rolled back, a rollback, and a crash of the node being
// updated followed by the deploy that finishes it. The tie-breaker never
// runs the app and is never touched.
func TestDeploy3NodesLab(t *testing.T) {
	v2 := labtest.BuildExample(t, labtest.Release(t), "2.0.0", nil)
	// v3 answers /healthz with 500: its service runs, its health check fails.
	v3 := labtest.BuildExample(t, labtest.Release(t), "3.0.0", func(dir string) {
		labtest.ReplaceIn(t, filepath.Join(dir, "src/hello_web/server.py"),
			`start_response("200 OK", [("Content-Type", "text/plain")`, `start_response("500 Internal Server Error", [("Content-Type", "text/plain")`)
	})

	// The cluster as cluster apply --package v1 (labtest.AppliedVersion) leaves it.
	l := labtest.Applied(t, 3, labtest.Release(t))
	inv, _ := labtest.Inventory(t, l)
	tb, ok := inv.Tiebreaker()
	if !ok || len(inv.Members()) != 2 {
		t.Fatalf("the 3-node lab has members %v and tie-breaker %v, want two app nodes and a tie-breaker", inv.Members(), tb)
	}
	e := &labEnv{t: t, l: l, inv: inv}
	start := time.Now()
	labtest.WaitServing(t, e.inv, 2*time.Minute)
	ctx := context.Background()

	// run deploys (or rolls back) under load and returns the result, the
	// error and the loads' reports.
	run := func(t *testing.T, o Options, min, moves int, what string) (*Result, error) {
		t.Helper()
		load := e.clients()
		time.Sleep(2 * time.Second)
		res, err := Run(ctx, o)
		logResult(t, res)
		load.finish(t, min, moves, what)
		if res != nil {
			for _, n := range res.Nodes {
				if n.Node == tb.Name {
					t.Errorf("the deploy worked on the tie-breaker %s: %+v", tb.Name, n)
				}
			}
		}
		return res, err
	}
	tiebreakerUntouched := func(t *testing.T) {
		t.Helper()
		if out := labtest.Sh(t, e.inv, tb.Name, "dpkg-query -W -f='${Status}' hello-web 2>/dev/null || echo absent"); out != "absent" {
			t.Errorf("the tie-breaker %s has hello-web: %q", tb.Name, out)
		}
	}

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"deploy v2", func(t *testing.T) {
			res, err := run(t, e.options(t, v2), 1500, 1, "deploy v2")
			if err != nil {
				t.Fatalf("deploy v2: %v", err)
			}
			if res.IPMoves != 1 || len(res.Nodes) != 2 {
				t.Errorf("deploy v2: %d IP moves, nodes %+v", res.IPMoves, res.Nodes)
			}
			e.expectVersion(t, built(t, "2.0-1"), "2.0.0")
			tiebreakerUntouched(t)
		}},
		{"v3 fails its health check: rolled back on the first node", func(t *testing.T) {
			holder := labtest.WaitServing(t, e.inv, time.Minute).IPHolder
			res, err := run(t, e.options(t, v3), 1000, 0, "deploy v3 (rolled back)")
			var de *Error
			if !errors.As(err, &de) || res.Outcome != OutcomeRolledBack {
				t.Fatalf("want a rolled-back deploy, got %v", err)
			}
			if len(res.Nodes) != 1 || res.Nodes[0].Node == holder || res.Nodes[0].Outcome != NodeRolledBack || res.IPMoves != 0 {
				t.Errorf("nodes %+v, %d IP moves (the IP was on %s)", res.Nodes, res.IPMoves, holder)
			}
			e.expectVersion(t, built(t, "2.0-1"), "2.0.0")
		}},
		{"rollback to v1", func(t *testing.T) {
			labtest.WaitServing(t, e.inv, time.Minute)
			o := e.options(t, "")
			o.Kind = KindRollback
			res, err := run(t, o, 1500, 1, "rollback to v1")
			if err != nil {
				t.Fatalf("rollback: %v", err)
			}
			if res.Version != built(t, "1.0-1") || res.IPMoves != 1 {
				t.Errorf("rollback result: %+v", res)
			}
			e.expectVersion(t, built(t, "1.0-1"), "1.0.0")
		}},
		{"crash of the node being updated, then the deploy that finishes it", func(t *testing.T) {
			holder := labtest.WaitServing(t, e.inv, time.Minute).IPHolder
			o := e.options(t, v2)
			crashed := make(chan string, 1)
			o.Progress = watcher{o.Progress, func(ev progress.Event) {
				if ev.Step == "install" && ev.Status == progress.StatusRunning {
					select {
					case crashed <- ev.Node:
						if err := l.Crash(ctx, ev.Node); err != nil {
							t.Errorf("crash %s: %v", ev.Node, err)
						}
					default:
					}
				}
			}}
			_, err := run(t, o, 500, 0, "crash mid-deploy")
			node := <-crashed
			var de *Error
			if !errors.As(err, &de) || !strings.Contains(err.Error(), node+" left the cluster during install") {
				t.Fatalf("deploy with %s crashed: %v", node, err)
			}
			if node == holder || node == tb.Name {
				t.Errorf("the crashed node %s was updated first; the IP was on %s", node, holder)
			}
			if err := l.Start(ctx, node); err != nil {
				t.Fatal(err)
			}
			labtest.WaitHealthy(t, e.inv, 2*time.Minute)
			res, err := run(t, e.options(t, v2), 1500, 1, "deploy v2 after the crash")
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			if res.Plan.Actions[0].Node != node || !res.Plan.Actions[0].Resume {
				t.Errorf("resume plan: %+v", res.Plan.Actions)
			}
			e.expectVersion(t, built(t, "2.0-1"), "2.0.0")
			tiebreakerUntouched(t)
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			t.FailNow()
		}
	}
	t.Logf("3-node lab test took %s", time.Since(start).Round(time.Second))
}
