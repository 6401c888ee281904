package setup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/progress"
)

// flagStep is a fake step done on a node once applied there.
func flagStep(name string, set *sync.Map) Step {
	return Step{
		Name: name,
		Check: func(ctx context.Context, t *Target) (State, error) {
			_, ok := set.Load(t.Node.Name)
			return doneIf(ok, "set %s", name), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			set.Store(t.Node.Name, true)
			return nil
		},
	}
}

var (
	doneStep  = Step{Name: "done", Check: func(context.Context, *Target) (State, error) { return Done(), nil }}
	waitStep  = Step{Name: "waits", Check: func(context.Context, *Target) (State, error) { return Skipped("waits for x"), nil }}
	breakStep = Step{Name: "breaks", Hint: "a hint",
		Check: func(context.Context, *Target) (State, error) { return Todo("broken"), nil },
		Apply: func(context.Context, *Target) error { return errors.New("it broke") }}
	unreadableStep = Step{Name: "unreadable",
		Check: func(context.Context, *Target) (State, error) { return State{}, errors.New("no such file") }}
)

// testPhases: "one" changes a step on both nodes, "two" has a step that
// waits and one that fails (apply) or whose check fails (plan), "three"
// is never reached by an apply.
func testPhases(inv *inventory.Inventory, last Step) []Phase {
	var set sync.Map
	return []Phase{
		{Name: "one", Stages: []Stage{{Nodes: inv.Nodes, Steps: []Step{flagStep("count", &set), doneStep}}}},
		{Name: "two", Stages: []Stage{{Nodes: inv.Nodes[:1], Steps: []Step{waitStep, last}}}},
		{Name: "three", Stages: []Stage{{Nodes: inv.Nodes, Steps: []Step{doneStep}}}},
	}
}

// event is a line of the JSON stream with setup's result.
type event struct {
	progress.Event
	Result *Summary `json:"result"`
}

func decodeEvents(t *testing.T, b []byte) []event {
	t.Helper()
	var out []event
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		if e.Time.IsZero() {
			t.Errorf("no time: %s", sc.Text())
		}
		out = append(out, e)
	}
	return out
}

// short is an event without its time and took, to compare.
func short(e event) string {
	s := strings.Join([]string{e.Type, e.Phase, e.Node, e.Step, e.Status, e.Message}, "|")
	return strings.TrimRight(s, "|")
}

func TestPlanEvents(t *testing.T) {
	inv := labInventory(t, 2)
	var b bytes.Buffer
	r, _ := NewRun(inv, fakeConns(inv), Options{Progress: progress.JSONProgress(&b)})
	_, err := r.planPhases(context.Background(), testPhases(inv, unreadableStep))
	if err == nil || !strings.Contains(err.Error(), "node1: two: unreadable: no such file") {
		t.Fatalf("got %v", err)
	}
	ev := decodeEvents(t, b.Bytes())
	var got []string
	for _, e := range ev {
		got = append(got, short(e))
	}
	want := []string{
		"plan|one|node1|count||set count",
		"plan|one|node2|count||set count",
		"plan|two|node1|waits|skipped|waits for x",
		"plan|two|node1|unreadable|failed|no such file",
		"result|||||failed: node1: two: unreadable: no such file",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	s := ev[len(ev)-1].Result
	if s == nil || s.Mode != ModePlan || s.Outcome != OutcomeFailed || s.Changes != 2 || s.Done != 4 || s.Waiting != 1 {
		t.Fatalf("summary %+v", s)
	}
	if want := []Failure{{Phase: "two", Node: "node1", Step: "unreadable", Error: "no such file"}}; !reflect.DeepEqual(s.Failed, want) {
		t.Errorf("failed %+v", s.Failed)
	}
	var phases []string
	for _, p := range s.Phases {
		phases = append(phases, fmt.Sprintf("%s %d %d", p.Name, p.Changes, p.Waiting))
	}
	if want := []string{"one 2 0", "two 0 1", "three 0 0"}; !reflect.DeepEqual(phases, want) {
		t.Errorf("phases %q", phases)
	}
}

func TestApplyEvents(t *testing.T) {
	inv := labInventory(t, 2)
	var b bytes.Buffer
	r, _ := NewRun(inv, fakeConns(inv), Options{Progress: progress.JSONProgress(&b)})
	_, err := r.runPhases(context.Background(), testPhases(inv, breakStep))
	var se *StepError
	if !errors.As(err, &se) || se.Step != "breaks" {
		t.Fatalf("got %v", err)
	}
	ev := decodeEvents(t, b.Bytes())
	// The nodes work in parallel: compare each node's (and the phases')
	// events in order.
	got := map[string][]string{}
	for _, e := range ev[:len(ev)-1] {
		if e.Type != progress.EventStep {
			t.Errorf("apply event %s", short(e))
		}
		if e.Status != progress.StatusRunning && e.Took <= 0 {
			t.Errorf("no time taken: %s", short(e))
		}
		got[e.Node] = append(got[e.Node], short(e))
	}
	want := map[string][]string{
		"": {
			"step|one|||running", "step|one|||changed|2 changed",
			"step|two|||running", "step|two|||failed|0 changed, 1 failed",
		},
		"node1": {
			"step|one|node1|count|running", "step|one|node1|count|changed|set count",
			"step|one|node1|done|running", "step|one|node1|done|ok",
			"step|two|node1|waits|running", "step|two|node1|waits|skipped|waits for x",
			"step|two|node1|breaks|running", "step|two|node1|breaks|failed|it broke",
		},
		"node2": {
			"step|one|node2|count|running", "step|one|node2|count|changed|set count",
			"step|one|node2|done|running", "step|one|node2|done|ok",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n%q\nwant:\n%q", got, want)
	}
	if ev[0].Node != "" || ev[0].Phase != "one" || ev[0].Status != progress.StatusRunning {
		t.Errorf("first event %s", short(ev[0]))
	}
	last := ev[len(ev)-1]
	if last.Type != progress.EventResult || last.Message != "failed: node1: two: breaks: it broke" {
		t.Fatalf("last event %s", short(last))
	}
	s := last.Result
	if s.Mode != ModeApply || s.Outcome != OutcomeFailed || s.Changes != 2 || s.Done != 2 || s.Waiting != 1 || s.Took <= 0 {
		t.Errorf("summary %+v", s)
	}
	if want := []Failure{{Phase: "two", Node: "node1", Step: "breaks", Error: "it broke", Hint: "a hint"}}; !reflect.DeepEqual(s.Failed, want) {
		t.Errorf("failed %+v", s.Failed)
	}
	if len(s.Phases) != 2 || s.Phases[0].Name != "one" || s.Phases[0].Changes != 2 || s.Phases[1].Name != "two" || s.Phases[1].Waiting != 1 || s.Phases[0].Took <= 0 {
		t.Errorf("phases %+v", s.Phases)
	}
}

// durations are the times in the text, which vary.
var durations = regexp.MustCompile(`\(\d[0-9.µmn]*s\)`)

// The text of an apply, written from its events, is what debship printed
// before the events: warnings, the phases, the steps changed, skipped
// and FAILED on stderr, the summary on stdout.
func TestApplyText(t *testing.T) {
	inv := labInventory(t, 2)
	var set sync.Map
	phases := []Phase{
		{Name: "one", Stages: []Stage{
			{Nodes: inv.Nodes[:1], Steps: []Step{flagStep("count", &set), doneStep}},
			{Nodes: inv.Nodes[1:], Steps: []Step{flagStep("count", &set), waitStep}},
		}},
		{Name: "two", Stages: []Stage{{Nodes: inv.Nodes[:1], Steps: []Step{doneStep, breakStep}}}},
	}
	var out, log bytes.Buffer
	p := TextProgress(&out, &log)
	warn(p, inv)
	r, _ := NewRun(inv, fakeConns(inv), Options{Progress: p})
	if _, err := r.runPhases(context.Background(), phases); err == nil {
		t.Fatal("no error")
	}
	wantLog := `WARNING: fencing is fence_dummy: it pretends to fence and is for the lab only
WARNING: storage is GlusterFS replica 2 (accept-split-brain-risk = true): a network split can leave files that differ on the two nodes
== one
node1    count                              changed: set count (T)
node2    count                              changed: set count (T)
node2    waits                              skipped: waits for x
   one: 2 changed (T)
== two
node1    breaks                             FAILED
`
	if got := durations.ReplaceAllString(log.String(), "(T)"); got != wantLog {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, wantLog)
	}
	if got := durations.ReplaceAllString(out.String(), "(T)"); got != "2 changes, 2 steps already done, 1 waiting (T)\n" {
		t.Errorf("stdout: %q", got)
	}
}

// A plan's text written from its events is WritePlan's; a failed plan
// writes none.
func TestPlanText(t *testing.T) {
	inv := labInventory(t, 2)
	for _, rep := range []*Report{planReport, {Done: 42}} {
		var direct, out, log bytes.Buffer
		WritePlan(&direct, rep)
		r, _ := NewRun(inv, fakeConns(inv), Options{Progress: TextProgress(&out, &log)})
		r.emitPlan(rep, nil)
		emitResult(r.Opts.Progress, ModePlan, nil, rep, 0)
		if out.String() != direct.String() || log.Len() != 0 {
			t.Errorf("from events:\n%s\nWritePlan:\n%s\nlog: %s", out.String(), direct.String(), log.String())
		}
	}
	var out bytes.Buffer
	r, _ := NewRun(inv, fakeConns(inv), Options{Progress: TextProgress(&out, &out)})
	if _, err := r.planPhases(context.Background(), testPhases(inv, unreadableStep)); err == nil || out.Len() != 0 {
		t.Errorf("failed plan: %v, wrote %q", err, out.String())
	}
}
