package setup

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/inventory/inventorytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./cluster/setup -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./cluster/setup -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func labInventory(t *testing.T, nodes int) *inventory.Inventory {
	t.Helper()
	doc := `name = "lab"
lab = true
[ssh]
user = "admin"
[[node]]
name = "node1"
address = "10.231.0.11"
[[node]]
name = "node2"
address = "10.231.0.12"
`
	if nodes == 3 {
		doc += "[[node]]\nname = \"node3\"\naddress = \"10.231.0.13\"\nrole = \"tiebreaker\"\n"
	}
	doc += `[floating-ip]
address = "10.231.0.100/24"
interface = "eth0"
[app]
package = "hello-web"
port = 8080
[storage]
volume = "shared"
mount = "/srv/shared"
brick = "/bricks/shared"
`
	if nodes == 2 {
		doc += "accept-split-brain-risk = true\n"
	}
	doc += `[network]
type = "none"
[fencing]
agent = "fence_dummy"
[hardening]
trusted-sources = ["10.231.0.1"]
`
	return inventorytest.Load(t, t.TempDir(), doc)
}

// counter is a fake step whose state is a number: done when it reached want.
func counterStep(name string, have *atomic.Int32, want int32, fail bool) Step {
	return Step{
		Name: name,
		Hint: "a hint",
		Check: func(ctx context.Context, t *Target) (State, error) {
			return doneIf(have.Load() >= want, "count to %d", want), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			if fail {
				return errors.New("it broke")
			}
			have.Store(want)
			return nil
		},
	}
}

func TestApplyRunsOnlyWhatIsNotDone(t *testing.T) {
	inv := labInventory(t, 2)
	var a, b atomic.Int32
	b.Store(5)
	r, err := NewRun(inv, fakeConns(inv), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ph := Phase{Name: "test", Stages: []Stage{{Nodes: inv.Nodes[:1], Steps: []Step{counterStep("a", &a, 1, false), counterStep("b", &b, 5, false)}}}}
	rep, err := r.runPhases(context.Background(), []Phase{ph})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Changes) != 1 || rep.Changes[0].Step != "a" || rep.Done != 1 {
		t.Fatalf("first apply: %+v", rep)
	}
	rep, err = r.runPhases(context.Background(), []Phase{ph})
	if err != nil || len(rep.Changes) != 0 || rep.Done != 2 {
		t.Fatalf("second apply: %+v, %v", rep, err)
	}
}

func TestApplyFailureStopsThePhase(t *testing.T) {
	inv := labInventory(t, 2)
	var a, b, c atomic.Int32
	r, _ := NewRun(inv, fakeConns(inv), Options{})
	phases := []Phase{
		{Name: "one", Stages: []Stage{
			{Nodes: inv.Nodes, Steps: []Step{counterStep("fails", &a, 1, true), counterStep("after", &b, 1, false)}},
			{Nodes: inv.Nodes, Steps: []Step{counterStep("next stage", &c, 1, false)}},
		}},
	}
	_, err := r.runPhases(context.Background(), phases)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "fails" || se.Phase != "one" || !strings.Contains(err.Error(), "hint: a hint") {
		t.Fatalf("got %v", err)
	}
	if b.Load() != 0 || c.Load() != 0 {
		t.Fatalf("steps after the failure ran: %d %d", b.Load(), c.Load())
	}
}

func TestApplyChecksAfterApply(t *testing.T) {
	inv := labInventory(t, 2)
	r, _ := NewRun(inv, fakeConns(inv), Options{})
	lying := Step{Name: "lies",
		Check: func(context.Context, *Target) (State, error) { return Todo("never done"), nil },
		Apply: func(context.Context, *Target) error { return nil }}
	_, err := r.runPhases(context.Background(), []Phase{{Name: "p", Stages: []Stage{{Nodes: inv.Nodes[:1], Steps: []Step{lying}}}}})
	if err == nil || !strings.Contains(err.Error(), "applied, but the check still finds: never done") {
		t.Fatalf("got %v", err)
	}
}

var planReport = &Report{Done: 3, Changes: []Change{
	{Phase: "base", Node: "node1", Step: "packages", Reason: "install htop"},
	{Phase: "harden", Node: "node1", Step: "ufw firewall", Reason: "ufw inactive"},
	{Phase: "harden", Node: "node2", Step: "ufw firewall", Reason: "rules change (/etc/debship/ufw-rules.sh missing)"},
}, Skipped: []Change{{Phase: "app", Node: "node1", Step: "app resource", Reason: "created after hello-web is installed on node1, node2", Skip: true}}}

func TestWritePlan(t *testing.T) {
	var b bytes.Buffer
	WritePlan(&b, planReport)
	b.WriteString("----\n")
	WritePlan(&b, &Report{Done: 42})
	golden(t, "plan.txt", b.Bytes())
}

func TestUnknownPhase(t *testing.T) {
	inv := labInventory(t, 2)
	if _, err := NewRun(inv, fakeConns(inv), Options{Only: []string{"hardn"}}); err == nil || !strings.Contains(err.Error(), "base, harden, network, ha, storage, app") {
		t.Fatalf("got %v", err)
	}
}

func TestWarnings(t *testing.T) {
	inv := labInventory(t, 2)
	w := strings.Join(inv.Warnings(), "\n")
	if !strings.Contains(w, "fence_dummy") || !strings.Contains(w, "replica 2") {
		t.Errorf("lab warnings: %s", w)
	}
	// Without fencing plan and apply refuse before they connect, unless
	// the risk is accepted: then every plan and apply warns.
	inv.Fencing = nil
	if _, err := NewRun(inv, fakeConns(inv), Options{}); err == nil || !strings.Contains(err.Error(), "the cluster has no fence agent") {
		t.Errorf("no fencing: %v", err)
	}
	inv.Fencing = &inventory.Fencing{AcceptNoFencing: true}
	if _, err := NewRun(inv, fakeConns(inv), Options{}); err != nil {
		t.Errorf("no fencing, accepted: %v", err)
	}
	if w := strings.Join(inv.Warnings(), "\n"); !strings.Contains(w, "NO FENCING") {
		t.Errorf("no fencing: %s", w)
	}
}
