// Package status reads the state of a cluster without changing it:
// membership, quorum, the floating IP's holder, resources, failed actions,
// gluster peers and heals, and per node the app's version, firewall and
// fail2ban. Status.Healthy says whether a deploy may start.
package status

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
)

// Status is the state of a cluster as `debship cluster status` shows it;
// deploy's preflight reads it too.
type Status struct {
	Cluster    string         `json:"cluster"`
	Quorum     bool           `json:"quorum"`
	DC         string         `json:"dc,omitempty"`
	FloatingIP string         `json:"floating_ip"`
	IPHolder   string         `json:"floating_ip_holder,omitempty"`
	Nodes      []NodeStatus   `json:"nodes"`
	Resources  []Resource     `json:"resources"`
	Failed     []FailedAction `json:"failed_actions"`
	Gluster    *GlusterStatus `json:"gluster,omitempty"`
	// Source is the node the cluster-wide facts were read on.
	Source string   `json:"source,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// NodeStatus is one node.
type NodeStatus struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Role      string `json:"role,omitempty"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Pacemaker: "online", "standby", "maintenance", "offline", "unclean"
	// or "" (not a cluster member, e.g. the tie-breaker).
	Pacemaker string `json:"pacemaker,omitempty"`
	Package   string `json:"package_version,omitempty"`
	Firewall  string `json:"firewall,omitempty"` // "active", "inactive", "not installed"
	Fail2ban  string `json:"fail2ban,omitempty"` // "running", "stopped", "not installed"
	Banned    int    `json:"fail2ban_banned"`
	Mounted   bool   `json:"shared_mounted"`
}

// Resource is one resource (clone instances appear under the clone's
// primitive id).
type Resource struct {
	ID     string   `json:"id"`
	Agent  string   `json:"agent"`
	Role   string   `json:"role"`
	Nodes  []string `json:"nodes"`
	Failed bool     `json:"failed"`
}

// FailedAction is an operation pacemaker recorded as failed.
type FailedAction struct {
	Operation string `json:"operation"`
	Node      string `json:"node"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
}

// GlusterStatus is the shared volume.
type GlusterStatus struct {
	Volume       string            `json:"volume"`
	Started      bool              `json:"started"`
	Peers        map[string]string `json:"peers"` // address -> state as seen by Source
	PendingHeals int               `json:"pending_heals"`
}

// Healthy reports whether the cluster is fit for a deploy: quorum, every
// member online, no failed actions, gluster peers connected and no
// pending heals. The reasons say what is wrong.
func (s *Status) Healthy() (bool, []string) {
	var why []string
	why = append(why, s.Errors...)
	if !s.Quorum {
		why = append(why, "the cluster has no quorum")
	}
	for _, n := range s.Nodes {
		if n.Role == inventory.RoleTiebreaker {
			if !n.Reachable {
				why = append(why, fmt.Sprintf("tie-breaker %s is unreachable", n.Name))
			}
			continue
		}
		if n.Pacemaker != "online" {
			why = append(why, fmt.Sprintf("%s is %s in pacemaker", n.Name, orDefault(n.Pacemaker, "unknown")))
		}
	}
	for _, f := range s.Failed {
		why = append(why, fmt.Sprintf("failed action %s on %s (%s)", f.Operation, f.Node, f.Status))
	}
	if g := s.Gluster; g != nil {
		for a, st := range g.Peers {
			if st != "Connected" {
				why = append(why, fmt.Sprintf("gluster peer %s is %s", a, st))
			}
		}
		if g.PendingHeals > 0 {
			why = append(why, fmt.Sprintf("gluster has %d entries to heal", g.PendingHeals))
		}
	}
	return len(why) == 0, why
}

// Gather reads the cluster's state through the connections it has
// (missing ones are unreachable nodes). It changes nothing.
func Gather(ctx context.Context, inv *inventory.Inventory, conns map[string]transport.Transport, connErrs map[string]error) *Status {
	s := &Status{Cluster: inv.Name, FloatingIP: inv.FloatingIP.Address, Failed: []FailedAction{}, Resources: []Resource{}}
	s.Nodes = make([]NodeStatus, len(inv.Nodes))
	var wg sync.WaitGroup
	for i, n := range inv.Nodes {
		ns := NodeStatus{Name: n.Name, Address: n.Address, Role: n.Role}
		if err := connErrs[n.Name]; err != nil {
			ns.Error = err.Error()
		}
		c := conns[n.Name]
		if c == nil {
			s.Nodes[i] = ns
			continue
		}
		ns.Reachable = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodeFacts(ctx, inv, c, &ns)
			s.Nodes[i] = ns
		}()
	}
	wg.Wait()

	// Cluster-wide facts from the first reachable member.
	for _, n := range inv.Members() {
		c := conns[n.Name]
		if c == nil {
			continue
		}
		out, err := host.CrmMonXML(ctx, c)
		if err != nil {
			continue
		}
		m, err := host.ParseCrmMon(out)
		if err != nil {
			s.Errors = append(s.Errors, err.Error())
			continue
		}
		s.Source = n.Name
		s.applyCrmMon(m)
		if inv.Storage != nil {
			s.Gluster = glusterStatus(ctx, inv, c)
		}
		break
	}
	if s.Source == "" {
		s.Errors = append(s.Errors, "no node that runs the app answers with the cluster's state (crm_mon)")
	}
	return s
}

func (s *Status) applyCrmMon(m *host.CrmMon) {
	s.Quorum = m.Summary.DC.Present && m.Summary.DC.Quorum
	s.DC = m.Summary.DC.Name
	state := map[string]string{}
	for _, n := range m.Nodes {
		st := "offline"
		switch {
		case n.Unclean:
			st = "unclean"
		case !n.Online:
		case n.Maintenance:
			st = "maintenance"
		case n.Standby:
			st = "standby"
		default:
			st = "online"
		}
		state[n.Name] = st
	}
	for i := range s.Nodes {
		s.Nodes[i].Pacemaker = state[s.Nodes[i].Name]
	}
	add := func(r host.CrmResource) {
		res := Resource{ID: r.ID, Agent: r.Agent, Role: r.Role, Failed: r.Failed, Nodes: []string{}}
		for _, n := range r.Nodes {
			res.Nodes = append(res.Nodes, n.Name)
		}
		s.Resources = append(s.Resources, res)
		if r.ID == inventory.ResourceFloatingIP && r.Active && len(res.Nodes) > 0 {
			s.IPHolder = strings.Join(res.Nodes, ",")
		}
	}
	for _, r := range m.Resources {
		add(r)
	}
	for _, c := range m.Clones {
		for _, r := range c.Resources {
			add(r)
		}
	}
	for _, f := range m.Failures {
		s.Failed = append(s.Failed, FailedAction{Operation: f.OpKey, Node: f.Node, Status: f.ExitStatus, Reason: f.ExitReason})
	}
}

// nodeFacts reads what status shows of one node. The first error is the
// node's; the facts after it are not read.
func nodeFacts(ctx context.Context, inv *inventory.Inventory, t transport.Transport, ns *NodeStatus) {
	var err error
	defer func() {
		if err != nil {
			ns.Error = err.Error()
		}
	}()
	if ns.Package, err = host.InstalledVersion(ctx, t, inv.App.Package); err != nil {
		return
	}
	if ns.Firewall, err = host.Firewall(ctx, t); err != nil {
		return
	}
	if ns.Fail2ban, ns.Banned, err = host.Fail2ban(ctx, t); err != nil {
		return
	}
	if inv.Storage != nil {
		ns.Mounted, err = host.GlusterMounted(ctx, t, inv.Storage.Mount)
	}
}

func glusterStatus(ctx context.Context, inv *inventory.Inventory, t transport.Transport) *GlusterStatus {
	g := &GlusterStatus{Volume: inv.Storage.Volume, Peers: map[string]string{}}
	for a, st := range host.GlusterPeers(ctx, t) {
		if a != "localhost" {
			g.Peers[a] = st
		}
	}
	g.Started = host.ReadVolumeInfo(ctx, t, g.Volume).Started()
	if g.Started {
		g.PendingHeals = host.PendingHeals(ctx, t, g.Volume)
	}
	return g
}

// Write prints a status for people.
func Write(w io.Writer, s *Status) {
	q := "no quorum"
	if s.Quorum {
		q = "quorum"
	}
	holder := s.IPHolder
	if holder == "" {
		holder = "nobody"
	}
	fmt.Fprintf(w, "cluster %s: %s, DC %s; floating IP %s on %s\n\n", s.Cluster, q, orDefault(s.DC, "none"), s.FloatingIP, holder)
	fmt.Fprintf(w, "%-10s %-16s %-11s %-12s %-14s %-9s %-8s %s\n", "NODE", "ADDRESS", "ROLE", "PACEMAKER", "PACKAGE", "FIREWALL", "FAIL2BAN", "SHARED")
	for _, n := range s.Nodes {
		role := orDefault(n.Role, "member")
		if !n.Reachable {
			fmt.Fprintf(w, "%-10s %-16s %-11s unreachable: %s\n", n.Name, n.Address, role, n.Error)
			continue
		}
		mounted := "-"
		if s.Gluster != nil && n.Role != inventory.RoleTiebreaker {
			mounted = "not mounted"
			if n.Mounted {
				mounted = "mounted"
			}
		}
		f2b := n.Fail2ban
		if n.Fail2ban == "running" {
			f2b = fmt.Sprintf("%d banned", n.Banned)
		}
		fmt.Fprintf(w, "%-10s %-16s %-11s %-12s %-14s %-9s %-8s %s\n", n.Name, n.Address, role, orDefault(n.Pacemaker, "-"),
			orDefault(n.Package, "-"), orDefault(n.Firewall, "-"), orDefault(f2b, "-"), mounted)
	}
	fmt.Fprintln(w)
	for _, r := range s.Resources {
		where := strings.Join(r.Nodes, ", ")
		if where == "" {
			where = "-"
		}
		fail := ""
		if r.Failed {
			fail = "  FAILED"
		}
		fmt.Fprintf(w, "resource %-14s %-30s %-8s %s%s\n", r.ID, r.Agent, r.Role, where, fail)
	}
	if len(s.Failed) == 0 {
		fmt.Fprintln(w, "failed actions: none")
	}
	for _, f := range s.Failed {
		fmt.Fprintf(w, "FAILED ACTION %s on %s: %s %s\n", f.Operation, f.Node, f.Status, f.Reason)
	}
	if g := s.Gluster; g != nil {
		var peers []string
		for a, st := range g.Peers {
			peers = append(peers, a+" "+st)
		}
		sort.Strings(peers)
		started := "not started"
		if g.Started {
			started = "started"
		}
		fmt.Fprintf(w, "gluster volume %s %s, %d pending heals; peers: %s\n", g.Volume, started, g.PendingHeals, strings.Join(peers, ", "))
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Get connects to the nodes that answer and gathers the status.
func Get(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions) *Status {
	conns, errs := inventory.Connect(ctx, inv, co)
	defer inventory.CloseAll(conns)
	return Gather(ctx, inv, conns, errs)
}
