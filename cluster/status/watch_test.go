package status

import (
	"strings"
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
)

// A cloned app is listed once per running instance: serving means an
// instance on every node that runs the app, the tie-breaker aside.
func TestServing(t *testing.T) {
	healthy := func(res ...Resource) *Status {
		return &Status{Quorum: true, Nodes: []NodeStatus{
			{Name: "node1", Pacemaker: "online"}, {Name: "node2", Pacemaker: "online"},
			{Name: "node3", Role: inventory.RoleTiebreaker, Reachable: true},
		}, Resources: res}
	}
	app := func(nodes ...string) Resource { return Resource{ID: inventory.ResourceApp, Nodes: nodes} }
	for _, c := range []struct {
		name string
		s    *Status
		want string
	}{
		{"one instance per node", healthy(app("node1"), app("node2")), ""},
		{"one instance stopped", healthy(app("node1"), app()), "the app runs on 1 of 2 nodes"},
		{"no app resource yet", healthy(), "the app runs on 0 of 2 nodes"},
		{"no quorum", &Status{Nodes: []NodeStatus{{Name: "node1", Pacemaker: "online"}}, Resources: []Resource{app("node1")}}, "the cluster has no quorum"},
	} {
		got := strings.Join(Serving(c.s), "; ")
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
