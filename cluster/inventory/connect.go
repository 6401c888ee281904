package inventory

import (
	"context"
	"errors"
	"sync"
	"time"

	"gitlab.com/debship/debship/cluster/transport"
)

// ConnectOptions tune how debship logs in to the nodes.
type ConnectOptions struct {
	// AcceptNewHostKeys records unknown host keys (trust on first use);
	// changed keys are refused regardless.
	AcceptNewHostKeys bool
	Timeout           time.Duration // per attempt; default 10 s
	Attempts          int           // default 3
	// Key and KnownHosts, when set, replace the inventory's [ssh] key (and
	// every node's key) and known-hosts: a CI job gets both as files of
	// its own, while the committed inventory names the operator's.
	Key        string
	KnownHosts string
}

// SSHConfig is the transport configuration of one node.
func (inv *Inventory) SSHConfig(n Node, o ConnectOptions) transport.Config {
	s := inv.SSHFor(n)
	if o.Key != "" {
		s.Key = o.Key
	}
	if o.KnownHosts != "" {
		s.KnownHosts = o.KnownHosts
	}
	return transport.Config{
		Node: n.Name, Host: n.Address, Port: s.Port, User: s.User, Key: s.Key,
		KnownHosts: s.KnownHosts, AcceptNewHostKeys: o.AcceptNewHostKeys,
		Timeout: o.Timeout, Attempts: o.Attempts,
	}
}

// Connect logs in to every node in parallel. It returns the connections it
// got and the error of each node it could not reach.
func Connect(ctx context.Context, inv *Inventory, o ConnectOptions) (map[string]transport.Transport, map[string]error) {
	conns := map[string]transport.Transport{}
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range inv.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := transport.Dial(ctx, inv.SSHConfig(n, o))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[n.Name] = err
				return
			}
			conns[n.Name] = c
		}()
	}
	wg.Wait()
	return conns, errs
}

// ConnectAll is Connect for plan and apply: every node must answer, or
// nothing is done on any (and the connections made are closed).
func ConnectAll(ctx context.Context, inv *Inventory, o ConnectOptions) (map[string]transport.Transport, error) {
	conns, errs := Connect(ctx, inv, o)
	if len(errs) > 0 {
		CloseAll(conns)
		var list []error
		for _, n := range inv.Nodes {
			if e := errs[n.Name]; e != nil {
				list = append(list, e)
			}
		}
		return nil, errors.Join(list...)
	}
	return conns, nil
}

// CloseAll closes connections.
func CloseAll(conns map[string]transport.Transport) {
	for _, c := range conns {
		c.Close()
	}
}

// Relogin returns an Options.Relogin that dials a fresh SSH connection.
func Relogin(inv *Inventory, o ConnectOptions) func(ctx context.Context, n Node) (transport.Transport, error) {
	return func(ctx context.Context, n Node) (transport.Transport, error) {
		o := o
		o.Attempts = 1
		return transport.Dial(ctx, inv.SSHConfig(n, o))
	}
}
