package progress

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

var sampleEvents = []Event{
	{Type: EventStep, Step: "preflight", Status: StatusRunning, Message: "cluster, nodes, lock"},
	{Type: EventStep, Step: "preflight", Status: StatusOK, Message: "healthy", Took: 0.5},
	{Type: EventPlan, Node: "node2", Message: "update node2: 1-1 -> 2-1"},
	{Type: EventStep, Node: "node2", Step: "install", Status: StatusRunning, Message: "apt-get install x.deb"},
	{Type: EventStep, Node: "node2", Step: "install", Status: StatusFailed, Message: "apt-get install failed (exit 100)", Took: 3.2},
	{Type: EventLog, Node: "node2", Message: "warning: something"},
	{Type: EventResult, Message: "deploy of x 2-1 failed", Result: outcome{"rolled-back"}},
}

// outcome stands for a deploy's or a setup's result.
type outcome struct {
	Outcome string `json:"outcome"`
}

func feed(p Progress) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i, e := range sampleEvents {
		e.Time = t0.Add(time.Duration(i) * time.Second)
		p.Event(e)
	}
	p.Close()
}

func TestJSONProgress(t *testing.T) {
	var b bytes.Buffer
	feed(JSONProgress(&b))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(sampleEvents) {
		t.Fatalf("%d lines for %d events", len(lines), len(sampleEvents))
	}
	if want := `{"time":"2026-01-01T12:00:04Z","type":"step","node":"node2","step":"install","status":"failed","message":"apt-get install failed (exit 100)","took_s":3.2}`; lines[4] != want {
		t.Errorf("line 5:\n%s\nwant\n%s", lines[4], want)
	}
	// A reader decodes the result into its own type.
	var last struct {
		Event
		Result outcome `json:"result"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Type != EventResult || last.Result.Outcome != "rolled-back" {
		t.Errorf("last line %s: %v", lines[len(lines)-1], err)
	}
}

func TestLinesProgress(t *testing.T) {
	var b bytes.Buffer
	feed(LinesProgress(&b))
	want := `12:00:00 cluster  preflight        ...  cluster, nodes, lock
12:00:01 cluster  preflight        OK (0.5s)  healthy
12:00:02 node2    plan: update node2: 1-1 -> 2-1
12:00:03 node2    install          ...  apt-get install x.deb
12:00:04 node2    install          FAILED (3.2s)  apt-get install failed (exit 100)
12:00:05 node2    warning: something
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestTerminalProgress(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string)
	go func() { b, _ := io.ReadAll(r); out <- string(b) }()
	feed(TerminalProgress(w, []string{"node1", "node2"}))
	w.Close()
	s := <-out
	// Live lines are redrawn in place (cursor up, clear) and finished steps
	// stay in the scrollback.
	for _, want := range []string{"\x1b[J", "\x1b[1A", "node2    install", "FAILED (3.2s)", "warning: something"} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, s)
		}
	}
}
