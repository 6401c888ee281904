package deploy

import (
	"context"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/lab/labtest"
	"gitlab.com/debship/debship/cluster/setup"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testlog"
)

// TestBookwormLab is the one full pass on Debian 12 nodes (pacemaker 2.1,
// pcs 0.11, glusterfs 10) while the other lab tests run on the lab's
// default release: apply, a second apply with 0 changes, a deploy under
// load with 0 failed requests, and a crash of the floating IP's holder.
// The file sorts before the default release's lab tests, which boot their
// own nodes afterwards.
func TestBookwormLab(t *testing.T) {
	bookworm, _ := debian.BySuite("bookworm")
	if labtest.Release(t) == bookworm {
		t.Log("the lab tests run on bookworm already (" + labtest.ReleaseEnv + ")")
	}
	v1 := labtest.BuildExample(t, bookworm, "1.0.0", nil)
	v2 := labtest.BuildExample(t, bookworm, "2.0.0", nil)
	l := labtest.FreshRelease(t, 2, bookworm)
	inv, _ := labtest.Inventory(t, l)
	e := &labEnv{t: t, l: l, inv: inv}
	ctx := context.Background()
	prog := setup.TextProgress(testlog.Writer(t), testlog.Writer(t))

	start := time.Now()
	rep, err := setup.Apply(ctx, inv, inventory.ConnectOptions{}, setup.Options{Package: v1, Progress: prog})
	if err != nil {
		t.Fatalf("cluster apply --package v1 on bookworm: %v", err)
	}
	t.Logf("bookworm: first apply, %d changes in %s", len(rep.Changes), time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	rep, err = setup.Apply(ctx, inv, inventory.ConnectOptions{}, setup.Options{Progress: prog})
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	t.Logf("bookworm: second apply, %d changes in %s", len(rep.Changes), time.Since(start).Round(100*time.Millisecond))
	if len(rep.Changes) != 0 {
		t.Errorf("the second apply on bookworm changed: %+v", rep.Changes)
	}
	labtest.WaitServing(t, e.inv, 2*time.Minute)
	e.expectVersion(t, debversion.TargetVersion("1.0-1", bookworm), "1.0.0")

	load := e.load()
	time.Sleep(2 * time.Second)
	res, err := Run(ctx, e.options(t, v2))
	logResult(t, res)
	if err != nil {
		t.Fatalf("deploy v2 on bookworm: %v", err)
	}
	finish(t, load, 1000, "bookworm deploy v2")
	e.expectVersion(t, debversion.TargetVersion("2.0-1", bookworm), "2.0.0")

	// A crash of the node holding the floating IP: the other one answers
	// within the bound the default release's failover test asserts.
	st := labtest.WaitServing(t, e.inv, time.Minute)
	holder := st.IPHolder
	load = e.load()
	time.Sleep(time.Second)
	crashed := time.Now()
	if err := l.Crash(ctx, holder); err != nil {
		t.Fatal(err)
	}
	var took time.Duration
	for took == 0 && time.Since(crashed) < failoverBound {
		for _, s := range load.Samples() {
			if s.OK() && s.Host != "" && s.Host != holder && s.Start.After(crashed) {
				took = s.Start.Add(s.Latency).Sub(crashed)
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := load.Stop()
	t.Logf("FAILOVER on bookworm: %s crashed, the other node answered after %s (%s)", holder, took.Round(10*time.Millisecond), r)
	if took == 0 {
		t.Errorf("no other node answered on the floating IP within %s of the crash of %s", failoverBound, holder)
	}
	if err := l.Start(ctx, holder); err != nil {
		t.Fatal(err)
	}
	labtest.WaitServing(t, e.inv, 2*time.Minute)
}

// failoverBound is how long the floating IP may stay silent after a crash
// of its holder (measured 2.6–3.3 s in the lab; corosync's token is
// 1000 ms): the bound leaves room for a loaded test machine.
const failoverBound = 15 * time.Second
