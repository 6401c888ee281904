package deploy

import (
	"bytes"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/progress"
)

// A deploy's events keep their JSON (deploy --json) now that the event
// model is cluster/progress's and Result is any.
func TestProgressJSON(t *testing.T) {
	var b bytes.Buffer
	p := progress.JSONProgress(&b)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	id := "20260101T120000Z-abcdef"
	p.Event(progress.Event{Time: t0, Deploy: id, Type: progress.EventStep, Node: "node2", Step: "install", Status: progress.StatusFailed, Message: "apt-get <x> & y", Took: 3.25})
	p.Event(progress.Event{Time: t0, Deploy: id, Type: progress.EventResult, Message: "deploy of x 2-1 failed", Result: &Result{ID: id, Kind: KindDeploy, Package: "x", Version: "2-1", Outcome: OutcomeRolledBack, Message: "m",
		Nodes: []NodeResult{{Node: "node2", From: "1-1", To: "2-1", Outcome: NodeRolledBack, Steps: map[string]float64{"install": 3.25}, Took: 4}}, Took: 5.5}})
	p.Close()
	// Written by the deploy package's own event model, before the move.
	want := `{"time":"2026-01-01T12:00:00Z","deploy":"20260101T120000Z-abcdef","type":"step","node":"node2","step":"install","status":"failed","message":"apt-get \u003cx\u003e \u0026 y","took_s":3.25}
{"time":"2026-01-01T12:00:00Z","deploy":"20260101T120000Z-abcdef","type":"result","message":"deploy of x 2-1 failed","result":{"id":"20260101T120000Z-abcdef","kind":"deploy","package":"x","version":"2-1","file":"","sha256":"","outcome":"rolled-back","message":"m","nodes":[{"node":"node2","from":"1-1","to":"2-1","outcome":"rolled-back","steps_s":{"install":3.25},"took_s":4}],"ip_moves":0,"took_s":5.5}}
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
