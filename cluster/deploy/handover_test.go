package deploy

import (
	"context"
	"strings"
	"testing"

	"gitlab.com/debship/debship/cluster/progress"
)

// TestRunFakeHandover checks the order around the floating IP's move: the
// new holder takes passed-on connections before the old holder starts
// passing them (else they would be dropped there), and gives the rule up
// after the move; where it cannot take them, the old holder holds new
// connections back instead, and the deploy says so.
func TestRunFakeHandover(t *testing.T) {
	v1 := makeDeb(t, "hello-web", "1.0-1")
	v2 := makeDeb(t, "hello-web", "2.0-1")
	for _, refused := range []bool{false, true} {
		f := newFakeCluster("1.0-1")
		f.seed(t, v1)
		f.noHandover = refused
		o, ev := fakeOptions(f, t, v2)
		res, err := Run(context.Background(), o)
		if err != nil || res.IPMoves != 1 {
			t.Fatalf("deploy: %v (%d moves)", err, res.IPMoves)
		}
		var order []string
		var move string
		for _, c := range f.commands(`# (handover|move-ip)\.sh`) {
			node, cmd, _ := strings.Cut(c, ": ")
			switch {
			case strings.HasPrefix(cmd, "# move-ip.sh"):
				order, move = append(order, "move-ip on "+node), cmd
			case strings.Contains(cmd, "-t nat -I"):
				order = append(order, "take on "+node)
			case strings.Contains(cmd, "-t nat -D"):
				order = append(order, "give up on "+node)
			}
		}
		want := "take on node2, move-ip on node1, give up on node2"
		if got := strings.Join(order, ", "); got != want {
			t.Errorf("refused %v: %s, want %s", refused, got, want)
		}
		passes := strings.Contains(move, "if handover_on; then")
		if passes == refused {
			t.Errorf("refused %v: move-ip.sh passes connections on: %v", refused, passes)
		}
		var logs []string
		for _, e := range ev.l {
			if e.Type == progress.EventLog {
				logs = append(logs, e.Node+": "+e.Message)
			}
		}
		warned := strings.Contains(strings.Join(logs, "\n"), "node2: warning: new connections are held back during the move")
		if warned != refused {
			t.Errorf("refused %v: warned %v: %q", refused, warned, logs)
		}
	}
}

// TestRunFakeLeftovers: rules a killed move left on a node are removed
// once the deploy holds the lock, before anything else changes, and the
// deploy says where and which.
func TestRunFakeLeftovers(t *testing.T) {
	f, v2 := fakeUpgrade(t)
	f.leftovers = map[string]string{"node2": "removed chain debship-freeze from mangle\n"}
	o, ev := fakeOptions(f, t, v2)
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	cmds := f.commands(`# leftovers\.sh|apt-get install -y|# move-ip\.sh`)
	if len(cmds) < 2 || !strings.Contains(cmds[0], "# leftovers.sh") || !strings.Contains(cmds[1], "# leftovers.sh") {
		t.Errorf("leftovers.sh is not the first change on each node: %q", cmds)
	}
	var warned bool
	for _, e := range ev.l {
		warned = warned || e.Type == progress.EventLog && e.Node == "node2" &&
			strings.Contains(e.Message, "a floating IP move was killed before it cleaned up; removed chain debship-freeze from mangle")
	}
	if !warned {
		t.Errorf("no warning names the removed chain: %+v", ev.l)
	}
}
