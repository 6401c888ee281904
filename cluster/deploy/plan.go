package deploy

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Actions of a plan.
const (
	ActionUpdate = "update"  // take the node out of service, install, health-check, return it
	ActionMoveIP = "move-ip" // move the floating IP from Node to To
)

// Action is one step of a plan.
type Action struct {
	Action string `json:"action"`
	Node   string `json:"node"`
	// From and To are versions for an update ("" From: not installed), and
	// nodes for a move of the floating IP.
	From string `json:"from"`
	To   string `json:"to"`
	// Resume marks a node that an interrupted deploy left out of service:
	// it is installed again even at the target version.
	Resume bool `json:"resume,omitempty"`
}

func (a Action) String() string {
	switch a.Action {
	case ActionMoveIP:
		return fmt.Sprintf("move the floating IP from %s to %s (the only move)", a.Node, a.To)
	case ActionUpdate:
		from := a.From
		if from == "" {
			from = "nothing"
		}
		s := fmt.Sprintf("update %s: %s -> %s", a.Node, from, a.To)
		if a.Resume {
			s += " (left out of service by an interrupted deploy: installed again)"
		}
		return s
	}
	return a.Action + " " + a.Node
}

// Plan is what a deploy does, in order.
type Plan struct {
	Package string   `json:"package"`
	Version string   `json:"version"`
	Holder  string   `json:"floating_ip_holder"` // before the deploy
	Actions []Action `json:"actions"`
	// Current lists the nodes already at the version (and in service).
	Current []string `json:"current,omitempty"`
}

// PlanInput is what the planner decides from: the members in inventory
// order, who holds the floating IP, the installed versions, and the nodes
// an interrupted deploy left out of service.
type PlanInput struct {
	Package      string
	Version      string
	Members      []string
	Holder       string
	Installed    map[string]string
	OutOfService map[string]bool
}

// MakePlan orders a rolling install: one node at a time, the nodes without
// the floating IP first, so that the node serving clients is updated last;
// before it, the floating IP moves once, to a node already updated (and
// health-checked). A node at the version that is in service is left alone.
// The floating IP therefore moves at most once per deploy, and never to a
// node that was not updated (or already current).
func MakePlan(in PlanInput) (*Plan, error) {
	if len(in.Members) < 2 {
		return nil, fmt.Errorf("a rolling deploy needs at least 2 nodes that run the app, the inventory has %d", len(in.Members))
	}
	if in.Holder == "" {
		return nil, errors.New("no node holds the floating IP")
	}
	found := false
	for _, m := range in.Members {
		found = found || m == in.Holder
	}
	if !found {
		return nil, fmt.Errorf("the floating IP is on %s, which is not a node that runs the app", in.Holder)
	}
	p := &Plan{Package: in.Package, Version: in.Version, Holder: in.Holder}
	needs := func(n string) bool { return in.OutOfService[n] || in.Installed[n] != in.Version }
	update := func(n string) Action {
		return Action{Action: ActionUpdate, Node: n, From: in.Installed[n], To: in.Version, Resume: in.OutOfService[n]}
	}
	// Out-of-service nodes first (they serve nothing now), then the other
	// passive nodes, in inventory order.
	var first, rest []string
	for _, n := range in.Members {
		switch {
		case n == in.Holder:
		case !needs(n):
			p.Current = append(p.Current, n)
		case in.OutOfService[n]:
			first = append(first, n)
		default:
			rest = append(rest, n)
		}
	}
	for _, n := range append(first, rest...) {
		p.Actions = append(p.Actions, update(n))
	}
	if !needs(in.Holder) {
		p.Current = append(p.Current, in.Holder)
		return p, nil
	}
	// The floating IP goes to the first node that runs the new version:
	// the first one updated in this deploy, else one already current.
	to := ""
	if len(p.Actions) > 0 {
		to = p.Actions[0].Node
	} else if len(p.Current) > 0 {
		to = p.Current[0]
	}
	if to == "" {
		return nil, errors.New("no node can take over the floating IP")
	}
	p.Actions = append(p.Actions, Action{Action: ActionMoveIP, Node: in.Holder, From: in.Holder, To: to}, update(in.Holder))
	return p, nil
}

// Write prints the plan for people.
func (p *Plan) Write(w io.Writer) {
	if len(p.Actions) == 0 {
		fmt.Fprintf(w, "nothing to do: every node runs %s %s\n", p.Package, p.Version)
		return
	}
	fmt.Fprintf(w, "deploy %s %s, one node at a time (floating IP on %s):\n", p.Package, p.Version, p.Holder)
	for i, a := range p.Actions {
		fmt.Fprintf(w, "  %d. %s\n", i+1, a)
	}
	if len(p.Current) > 0 {
		fmt.Fprintf(w, "  already at %s: %s\n", p.Version, strings.Join(p.Current, ", "))
	}
}

// IPMoves counts the moves of the floating IP in the plan.
func (p *Plan) IPMoves() int {
	n := 0
	for _, a := range p.Actions {
		if a.Action == ActionMoveIP {
			n++
		}
	}
	return n
}
