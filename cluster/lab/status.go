package lab

import (
	"context"
	"sync"
	"time"
)

// Status is what `lab status` shows (and prints as JSON with --json).
type Status struct {
	Dir        string       `json:"dir"`
	Inventory  string       `json:"inventory"`
	Key        string       `json:"key"`
	KnownHosts string       `json:"known_hosts"`
	Release    string       `json:"release"`
	Subnet     string       `json:"subnet"`
	Host       string       `json:"host_address"`
	FloatingIP string       `json:"floating_ip"`
	Bridge     string       `json:"bridge"`
	Nodes      []NodeStatus `json:"nodes"`
}

// NodeStatus is one node's state.
type NodeStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Role    string `json:"role,omitempty"`
	// State is "running" (booted) or "stopped" (crashed or never started).
	State string `json:"state"`
	// Link is "up", or "down" when partitioned or crashed.
	Link string `json:"link"`
	// SSH is true when the admin user can log in right now.
	SSH bool `json:"ssh"`
	// PID is the host PID of the node's systemd.
	PID int `json:"pid,omitempty"`
	// MemoryBytes is the proportional set size of all the node's processes.
	MemoryBytes int64 `json:"memory_bytes"`
}

// Status inspects the lab (read-only; SSH probes run in parallel).
func (l *Lab) Status(ctx context.Context) Status {
	s := Status{
		Dir:        l.Dir,
		Inventory:  l.InventoryPath(),
		Key:        l.KeyPath(),
		KnownHosts: l.KnownHostsPath(),
		Release:    l.Release,
		Subnet:     l.Subnet.String(),
		Host:       l.HostAddress().String(),
		FloatingIP: l.FloatingIP().String(),
		Bridge:     BridgeName,
		Nodes:      make([]NodeStatus, len(l.Nodes)),
	}
	var wg sync.WaitGroup
	for i, n := range l.Nodes {
		ns := NodeStatus{Name: n.Name, Address: n.Address.String(), Role: n.Role, State: "stopped", Link: "down"}
		if linkUp(n.Name) {
			ns.Link = "up"
		}
		if _, ok := nspawnPID(n.Name); ok {
			ns.State = "running"
			ns.PID, _ = initPID(n.Name)
			if cgs, err := cgroupDirs(n.Name); err == nil && len(cgs) > 0 {
				ns.MemoryBytes = pssBytes(alive(cgroupPIDs(cgs[0])))
			}
		}
		s.Nodes[i] = ns
		if ns.State == "running" && ns.Link == "up" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.Nodes[i].SSH = l.sshProbe(ctx, n, time.Second) == nil
			}()
		}
	}
	wg.Wait()
	return s
}
