package status

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
)

// Watcher reads a cluster's state again and again through one SSH
// connection per node, kept open between looks: a hardened node limits new
// SSH connections (ufw limit: the 6th in 30 s is refused), so a poll that
// logs in every time locks its operator out within seconds.
type Watcher struct {
	inv   *inventory.Inventory
	co    inventory.ConnectOptions
	conns map[string]transport.Transport
	errs  map[string]error
	tried map[string]time.Time // a node's last login attempt
	mu    sync.Mutex
}

// redialEvery spaces the logins to a node that did not answer, so that a
// node that is down or rebooting costs a handful of new connections a
// minute, within ufw's limit.
const redialEvery = 10 * time.Second

// NewWatcher logs in to every node that answers.
func NewWatcher(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions) *Watcher {
	w := &Watcher{inv: inv, co: co, tried: map[string]time.Time{}}
	w.conns, w.errs = inventory.Connect(ctx, inv, co)
	now := time.Now()
	for _, n := range inv.Nodes {
		w.tried[n.Name] = now
	}
	return w
}

// Get gathers the state once. A node without a connection is dialled
// again when redialEvery has passed since its last attempt; a connection
// that broke is dropped and dialled again on a later Get.
func (w *Watcher) Get(ctx context.Context) *Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.redial(ctx)
	s := Gather(ctx, w.inv, w.conns, w.errs)
	for _, n := range s.Nodes {
		if c := w.conns[n.Name]; c != nil && n.Error != "" && !answers(ctx, c) {
			c.Close()
			delete(w.conns, n.Name)
			w.errs[n.Name] = fmt.Errorf("%s: the connection broke", n.Name)
		}
	}
	return s
}

// answers tells a connection that works (a command that failed on the
// node) from one that broke (the node rebooted, the network went away).
func answers(ctx context.Context, c transport.Transport) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, _, err := c.Run(ctx, "true")
	return err == nil
}

func (w *Watcher) redial(ctx context.Context) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, n := range w.inv.Nodes {
		if w.conns[n.Name] != nil || time.Since(w.tried[n.Name]) < redialEvery {
			continue
		}
		w.tried[n.Name] = time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := transport.Dial(ctx, w.inv.SSHConfig(n, w.co))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				w.errs[n.Name] = err
				return
			}
			delete(w.errs, n.Name)
			w.conns[n.Name] = c
		}()
	}
	wg.Wait()
}

// Close ends the connections.
func (w *Watcher) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	inventory.CloseAll(w.conns)
	w.conns = map[string]transport.Transport{}
}

// Serving lists what keeps a healthy-looking cluster from serving on every
// node: Healthy's reasons, and an app instance pacemaker has not started.
func Serving(s *Status) []string {
	if ok, why := s.Healthy(); !ok {
		return why
	}
	members := len(s.Nodes)
	for _, n := range s.Nodes {
		if n.Role == inventory.RoleTiebreaker {
			members--
		}
	}
	running := map[string]bool{} // a clone has one entry per instance
	for _, r := range s.Resources {
		if r.ID == inventory.ResourceApp {
			for _, n := range r.Nodes {
				running[n] = true
			}
		}
	}
	if len(running) < members {
		return []string{fmt.Sprintf("the app runs on %d of %d nodes", len(running), members)}
	}
	return nil
}

// WaitServing looks every second until Serving has nothing to say, and
// fails after limit with the reasons of the last look.
func WaitServing(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions, limit time.Duration) (*Status, error) {
	return WaitFor(ctx, inv, co, limit, "serving", Serving)
}

// WaitFor looks every second, through one connection per node, until why
// has nothing to say of the cluster's state, and fails after limit with
// the reasons of the last look; what names the state in the error.
func WaitFor(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions, limit time.Duration, what string, why func(*Status) []string) (*Status, error) {
	w := NewWatcher(ctx, inv, co)
	defer w.Close()
	deadline := time.Now().Add(limit)
	for {
		s := w.Get(ctx)
		reasons := why(s)
		if len(reasons) == 0 {
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("cluster %s not %s after %s: %s", inv.Name, what, limit, strings.Join(reasons, "; "))
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Watch calls show with the cluster's state every interval until ctx ends,
// through one kept connection per node (see Watcher).
func Watch(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions, interval time.Duration, show func(*Status) error) error {
	w := NewWatcher(ctx, inv, co)
	defer w.Close()
	for {
		s := w.Get(ctx)
		if ctx.Err() != nil {
			return nil // a look cut short by Ctrl-C shows nothing
		}
		if err := show(s); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
