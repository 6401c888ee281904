package deploy

import (
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

// A history record can hold a migration's output (here a traceback): it
// must reach every node's history without ever being on a command line,
// which every user of the node sees in ps, in plain text or encoded.
func TestRunFakeHistoryRecordNotOnCommandLine(t *testing.T) {
	f, v2 := fakeUpgrade(t)
	f.migration = map[string]int{"2.0-1": 3}
	o, _ := fakeOptions(f, t, v2)
	res, err := Run(context.Background(), o)
	if res.Outcome != OutcomeRolledBack {
		t.Fatalf("outcome %s (%v), want %s", res.Outcome, err, OutcomeRolledBack)
	}
	const secret = "no such table: shop_item" // in the migration's output
	for _, n := range f.nodes {
		h := f.history[n]
		if len(h) != 2 || !strings.Contains(h[1], secret) {
			t.Errorf("%s: the history has no end record with the migration's output: %q", n, h)
		}
	}
	encoded := regexp.MustCompile(`[A-Za-z0-9+/=]{16,}`)
	for _, c := range f.ran {
		if strings.HasPrefix(c, "node1: upload ") || strings.HasPrefix(c, "node2: upload ") {
			continue // a path; the data went on stdin
		}
		shown := c
		for _, w := range encoded.FindAllString(c, -1) {
			if b, err := base64.StdEncoding.DecodeString(w); err == nil {
				shown += "\n" + string(b)
			}
		}
		if strings.Contains(shown, secret) {
			t.Errorf("a history record on a command line: %.300s", c)
		}
	}
}
