package labtest

import (
	"context"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/status"
	"gitlab.com/debship/debship/cluster/transport"
)

// Sh runs cmd on the node as debship does (its SSH transport, the
// inventory's user with sudo) and returns its output; an error fails the
// test.
func Sh(t testing.TB, inv *inventory.Inventory, node, cmd string) string {
	t.Helper()
	out, err := ShErr(inv, node, cmd)
	if err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	return out
}

// ShErr is Sh for a command that may fail, or a node that may be down: a
// new login of at most 5 s, the command bounded to a minute.
func ShErr(inv *inventory.Inventory, node, cmd string) (string, error) {
	n, _ := inv.Node(node)
	c, err := transport.Dial(context.Background(), inv.SSHConfig(n, inventory.ConnectOptions{Timeout: 5 * time.Second}))
	if err != nil {
		return "", err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return transport.Output(ctx, c, cmd)
}

// statusConnect is how the waits reach the nodes: a node that is down
// costs 5 s a try, and is tried again on a later look.
var statusConnect = inventory.ConnectOptions{Timeout: 5 * time.Second, Attempts: 1}

// WaitHealthy waits until status says the cluster is healthy (fit for a
// deploy: quorum, every member online, no failed actions, gluster whole);
// an app instance may still be stopped (a node a deploy left banned).
func WaitHealthy(t testing.TB, inv *inventory.Inventory, limit time.Duration) *status.Status {
	t.Helper()
	return wait(t, inv, limit, "healthy", func(s *status.Status) []string {
		_, why := s.Healthy()
		return why
	})
}

// WaitServing waits until the cluster is healthy and the app runs on
// every member (status.Serving), as after a finished deploy.
func WaitServing(t testing.TB, inv *inventory.Inventory, limit time.Duration) *status.Status {
	t.Helper()
	return wait(t, inv, limit, "serving", status.Serving)
}

func wait(t testing.TB, inv *inventory.Inventory, limit time.Duration, what string, why func(*status.Status) []string) *status.Status {
	t.Helper()
	s, err := status.WaitFor(context.Background(), inv, statusConnect, limit, what, why)
	if err != nil {
		LogPacemaker(t, inv)
		t.Fatal(err)
	}
	return s
}

// LogPacemaker logs what pacemaker and the app said on each member, so
// that a failure (or a slow recovery) explains itself.
func LogPacemaker(t testing.TB, inv *inventory.Inventory) {
	t.Helper()
	for _, n := range inv.Members() {
		out, err := ShErr(inv, n.Name, "crm_mon -1 -r -f 2>&1; journalctl --no-pager -o short-precise --since -6min -n 80 -u pacemaker -u corosync -u "+inv.AppUnit()+" 2>&1")
		t.Logf("%s (%v):\n%s", n.Name, err, out)
	}
}
