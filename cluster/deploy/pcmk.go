package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
)

// crmState is the cluster state a deploy decides from: crm_mon's XML as
// cluster/host reads it, with the questions only a deploy asks.
type crmState struct{ host.CrmMon }

func readCrm(ctx context.Context, t transport.Transport) (*crmState, error) {
	m, err := host.ReadCrmMon(ctx, t)
	if err != nil {
		return nil, err
	}
	return &crmState{*m}, nil
}

// ipHolder is the node the floating IP runs on ("" if none).
func (s *crmState) ipHolder() string {
	for _, r := range s.Resources {
		if r.ID == inventory.ResourceFloatingIP && r.Active && len(r.Nodes) > 0 {
			return r.Nodes[0].Name
		}
	}
	return ""
}

// appOn reports whether an app instance is started on node.
func (s *crmState) appOn(node string) bool {
	for _, c := range s.Clones {
		for _, r := range c.Resources {
			if r.ID != inventory.ResourceApp || !r.Active || r.Role != "Started" {
				continue
			}
			for _, n := range r.Nodes {
				if n.Name == node {
					return true
				}
			}
		}
	}
	return false
}

// appFailedOn reports failed operations of the app on node (a start that
// failed leaves a fail count that keeps pacemaker from starting it there).
func (s *crmState) appFailedOn(node string) bool {
	for _, f := range s.Failures {
		if f.Node == node && strings.HasPrefix(f.OpKey, inventory.ResourceApp+"_") {
			return true
		}
	}
	return false
}

func (s *crmState) online(node string) bool {
	for _, n := range s.Nodes {
		if n.Name == node {
			return n.Online && !n.Unclean
		}
	}
	return false
}

// unmanaged lists the deploy's resources pacemaker does not manage now.
func (s *crmState) unmanaged() []string {
	var out []string
	for _, r := range s.Resources {
		if r.ID == inventory.ResourceFloatingIP && r.Managed == "false" {
			out = append(out, r.ID)
		}
	}
	for _, c := range s.Clones {
		if c.ID == inventory.ResourceAppClone && c.Managed == "false" {
			out = append(out, c.ID)
		}
	}
	return out
}

// Constraint ids crm_resource gives the bans and moves a deploy makes.
func banID(node string) string { return "cli-ban-" + inventory.ResourceAppClone + "-on-" + node }

const preferIPID = "cli-prefer-" + inventory.ResourceFloatingIP

// leftovers lists the location constraints of crm_resource --ban/--move
// on the app and the floating IP: a deploy removes its own, so any found
// before a deploy were left by an interrupted one (or made by hand).
func leftovers(ctx context.Context, t transport.Transport) ([]host.Location, error) {
	c, err := host.ReadConstraints(ctx, t)
	if err != nil {
		return nil, err
	}
	var found []host.Location
	for _, l := range c.Locations {
		if strings.HasPrefix(l.ID, "cli-") && (l.Rsc == inventory.ResourceAppClone || l.Rsc == inventory.ResourceApp || l.Rsc == inventory.ResourceFloatingIP) {
			found = append(found, l)
		}
	}
	return found, nil
}

// pcmk runs pacemaker commands on a control node: a member other than the
// one being worked on, so a node that crashes mid-install does not take
// the deploy's view of the cluster with it.
type pcmk struct {
	t      transport.Transport
	settle time.Duration
}

// banApp stops the app's instance on node and keeps it stopped.
func (p *pcmk) banApp(ctx context.Context, node string) error {
	return host.Ban(ctx, p.t, inventory.ResourceAppClone, node)
}

// clearApp lifts the ban, after clearing the fail count a failed start of
// a bad version left (else pacemaker would not start the app there until
// failure-timeout passes).
func (p *pcmk) clearApp(ctx context.Context, node string, failed bool) error {
	if failed {
		if err := host.Cleanup(ctx, p.t, inventory.ResourceAppClone, node); err != nil {
			return err
		}
	}
	return host.Clear(ctx, p.t, inventory.ResourceAppClone, node)
}

// clearIP removes the constraint of the floating IP's move: stickiness
// keeps it where it is.
func (p *pcmk) clearIP(ctx context.Context) error {
	return host.Clear(ctx, p.t, inventory.ResourceFloatingIP, "")
}

// waitFor polls the cluster state until cond holds, then waits for
// pacemaker to settle (no transition in progress).
func (p *pcmk) waitFor(ctx context.Context, what string, cond func(*crmState) bool) (*crmState, error) {
	deadline := time.Now().Add(p.settle)
	var last *crmState
	for {
		s, err := readCrm(ctx, p.t)
		if err == nil && cond(s) {
			last = s
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("waiting %s for %s: %w", p.settle, what, err)
			}
			return s, fmt.Errorf("waited %s for %s", p.settle, what)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	left := time.Until(deadline)
	if left < 5*time.Second {
		left = 5 * time.Second
	}
	if err := host.WaitIdle(ctx, p.t, left); err != nil {
		return last, fmt.Errorf("pacemaker did not settle after %s: %w", what, err)
	}
	return readCrm(ctx, p.t)
}
