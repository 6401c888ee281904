// Package deploy installs a new version of the app's .deb across the
// cluster without dropping requests: one node at a time, the node without
// the floating IP first; the floating IP moves once, to an updated and
// health-checked node; a node whose install or health check fails is put
// back to its previous .deb and the deploy stops. See Run.
package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/progress"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/inspect"
)

// Kinds of deploy.
const (
	KindDeploy   = "deploy"
	KindRollback = "rollback"
)

// Options are what a deploy is asked to do.
type Options struct {
	Inventory *inventory.Inventory
	Connect   inventory.ConnectOptions
	// Conns are open connections to every node (tests); nil: Run connects
	// and closes them again.
	Conns map[string]transport.Transport

	// Deb is the .deb to deploy. For a rollback it may be empty: the
	// previous version's .deb is taken from the nodes' cache.
	Deb  string
	Kind string // KindDeploy (default) or KindRollback
	// RollbackTo is the version a rollback goes to; empty: the version
	// before the last successful deploy.
	RollbackTo string

	// DryRun runs the read-only checks and reports the plan; nothing
	// changes, not even the lock.
	DryRun bool
	// ForceUnlock takes the deploy lock over from a deploy that died.
	ForceUnlock bool
	// Holder names who deploys, for the lock and the history ("alice",
	// "webhook job 12"); Host is the machine (default: this host name).
	Holder, Host string

	Health HealthCheck
	// Settle bounds each wait for pacemaker (a stop, a start, the move of
	// the floating IP); default 2 minutes.
	Settle time.Duration
	// InstallTimeout bounds apt-get on a node; default 10 minutes.
	InstallTimeout time.Duration
	// Drain is how long long requests in flight on the node that gives up
	// the floating IP may take to finish, while new connections are still
	// served there; default 10 s, negative: no drain (the IP moves at once;
	// requests in flight there are lost). Then new connections go to the
	// new holder, the short requests finish and the kept-alive connections
	// end, within 1 s (300 ms where new connections are held back
	// instead; see cluster/ipmove).
	Drain time.Duration
	// SkipMigrate does not start the package's migration (an emergency:
	// the schema is already where the new version needs it).
	SkipMigrate bool
	// MigrateTimeout bounds the migration; default 30 minutes.
	MigrateTimeout time.Duration

	Progress progress.Progress
}

func (o *Options) defaults() {
	if o.Kind == "" {
		o.Kind = KindDeploy
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Minute
	}
	if o.InstallTimeout <= 0 {
		o.InstallTimeout = 10 * time.Minute
	}
	if o.MigrateTimeout <= 0 {
		o.MigrateTimeout = 30 * time.Minute
	}
	if o.Drain == 0 {
		o.Drain = 10 * time.Second
	}
	if o.Progress == nil {
		o.Progress = progress.Discard
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.Holder == "" {
		o.Holder = "unknown"
	}
	o.Health = o.Health.withDefaults()
}

// NodeResult is what happened on one node.
type NodeResult struct {
	Node    string `json:"node"`
	From    string `json:"from"`
	To      string `json:"to"`
	Outcome string `json:"outcome"` // NodeUpdated, NodeRolledBack, NodeFailed
	// Steps are the durations of the node's steps in seconds.
	Steps map[string]float64 `json:"steps_s,omitempty"`
	Took  float64            `json:"took_s"`
	Error string             `json:"error,omitempty"`
	// Migration is MigrationRan, MigrationFailed or MigrationSkipped on
	// the node the deploy's migration ran on; MigrationOutput is the end
	// of its output.
	Migration       string   `json:"migration,omitempty"`
	MigrationOutput []string `json:"migration_output,omitempty"`
}

// Node outcomes.
const (
	NodeUpdated    = "updated"
	NodeRolledBack = "rolled-back"
	NodeFailed     = "failed" // left out of service; see Error
	// Internal: the deploy ended before the node's turn (nodeStopped:
	// cancelled; nodeNotStarted: a check before touching it failed).
	nodeStopped    = "stopped"
	nodeNotStarted = "not-started"
)

// Result is the outcome of a deploy.
type Result struct {
	ID      string       `json:"id"`
	Kind    string       `json:"kind"`
	Package string       `json:"package"`
	Version string       `json:"version"`
	File    string       `json:"file"`
	SHA256  string       `json:"sha256"`
	Outcome string       `json:"outcome"`
	Message string       `json:"message"`
	Plan    *Plan        `json:"plan,omitempty"`
	Nodes   []NodeResult `json:"nodes,omitempty"`
	IPMoved string       `json:"ip_moved,omitempty"` // "node1 -> node2"
	IPMoves int          `json:"ip_moves"`
	Took    float64      `json:"took_s"`
	// TakenOver is the lock --force-unlock removed.
	TakenOver *Lock `json:"taken_over,omitempty"`
}

// PreflightError is a deploy refused before anything changed; Problems
// are one sentence each.
type PreflightError struct {
	Problems []string
	Lock     *LockHeldError // set when the lock is held
}

func (e *PreflightError) Error() string {
	return "preflight failed, nothing was changed:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Unwrap lets errors.As find the *LockHeldError.
func (e *PreflightError) Unwrap() error {
	if e.Lock == nil {
		return nil
	}
	return e.Lock
}

// Error is a deploy that started and did not finish: Result says what each
// node runs now.
type Error struct{ Result *Result }

func (e *Error) Error() string { return e.Result.Message }

// debFile is the .deb being deployed.
type debFile struct {
	path, pkg, version, arch, sha256 string
	target                           string // the release it was built for ("debian-13"); "" when untargeted
	mode                             string // debfile.ModeCluster, ModeSystemd or "" (Package.Mode)
	data                             []byte
}

// cacheName is the file name of the .deb in the nodes' cache.
func (d *debFile) cacheName() string { return debfile.FileName(d.pkg, d.version, d.arch) }

func (d *debFile) cachePath() string { return inventory.PackageCache + "/" + d.cacheName() }

// stagingPath is where the copy waits until the lock is taken: a directory
// of the deploy's own, so that a deploy refused by the lock never removes
// the copy of the one holding it.
func (d *deployment) stagingPath() string {
	return inventory.PackageCache + "/incoming/" + d.id + "/" + d.deb.cacheName()
}

// readDeb reads and checks a .deb like `debship inspect --check`.
func readDeb(path string) (*debFile, []string) {
	id, err := debfile.OpenDeb(path)
	if err != nil {
		if os.IsNotExist(err) || os.IsPermission(err) {
			return nil, []string{fmt.Sprintf("cannot read the package: %v", err)}
		}
		return nil, []string{fmt.Sprintf("%s is not a valid .deb: %v", filepath.Base(path), err)}
	}
	p, err := inspect.ReadPackage(path)
	if err != nil {
		return nil, []string{fmt.Sprintf("%s is not a valid .deb: %v", filepath.Base(path), err)}
	}
	var problems []string
	for _, c := range p.Check() {
		if !c.OK {
			problems = append(problems, fmt.Sprintf("%s fails the check %q: %s", filepath.Base(path), c.Name, strings.Join(c.Problems, "; ")))
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []string{fmt.Sprintf("cannot read the package: %v", err)}
	}
	return &debFile{path: path, pkg: id.Package, version: id.Version, arch: id.Arch, sha256: id.SHA256, target: id.Target, mode: p.Mode, data: data}, problems
}

// deployment is one run of Run.
type deployment struct {
	o     Options
	inv   *inventory.Inventory
	conns map[string]transport.Transport
	deb   *debFile
	id    string
	res   *Result
	start time.Time
	facts map[string]*nodeFacts
	state *crmState
	plan  *Plan
	// resultSent: execute sent the EventResult itself.
	resultSent bool
	// migrated: this deploy's migration ran (or had its turn).
	migrated bool

	mu      sync.Mutex
	ipMoves int
	// gone are nodes pacemaker reported offline during the deploy: no more
	// commands go to them (their SSH sessions would hang until the
	// keepalive gives up).
	gone map[string]bool
}

func (d *deployment) isGone(n string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gone[n]
}

func (d *deployment) setGone(n string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone == nil {
		d.gone = map[string]bool{}
	}
	d.gone[n] = true
}

func (d *deployment) emit(e progress.Event) {
	e.Time = time.Now()
	e.Deploy = d.id
	d.o.Progress.Event(e)
}

func (d *deployment) log(node, format string, a ...any) {
	d.emit(progress.Event{Type: progress.EventLog, Node: node, Message: fmt.Sprintf(format, a...)})
}

// step reports a step's start and returns the function that reports its
// end (err nil: ok).
func (d *deployment) step(node, name, format string, a ...any) func(err error, format string, a ...any) float64 {
	start := time.Now()
	d.emit(progress.Event{Type: progress.EventStep, Node: node, Step: name, Status: progress.StatusRunning, Message: fmt.Sprintf(format, a...)})
	return func(err error, format string, a ...any) float64 {
		took := time.Since(start).Seconds()
		st, msg := progress.StatusOK, fmt.Sprintf(format, a...)
		if err != nil {
			st = progress.StatusFailed
			if msg == "" {
				msg = err.Error()
			}
		}
		d.emit(progress.Event{Type: progress.EventStep, Node: node, Step: name, Status: st, Message: msg, Took: took})
		return took
	}
}

func newID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Run deploys. It connects to every node, runs the preflight checks
// (nothing changes if one fails: *PreflightError), copies the .deb to every
// node, takes the deploy lock, and rolls the nodes one at a time. A node
// that fails is rolled back to its previous version and the deploy stops
// with an *Error; the nodes not yet updated are not touched.
//
// Cancelling ctx (Ctrl-C, the webhook's shutdown) stops the deploy safely:
// the node being updated is finished or rolled back, the lock released,
// and Run returns an *Error.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if o.Inventory == nil {
		return nil, errors.New("deploy: no inventory")
	}
	d := &deployment{o: o, inv: o.Inventory, id: newID(), start: time.Now()}
	d.res = &Result{ID: d.id, Kind: o.Kind, Package: o.Inventory.App.Package}
	res, err := d.run(ctx)
	if !d.resultSent {
		// Every run ends with one result event, refusals included, so that
		// a consumer of --json always learns the outcome.
		res.Took = time.Since(d.start).Seconds()
		if err != nil && res.Outcome == "" {
			res.Outcome = OutcomeRefused
			if _, ok := err.(*PreflightError); !ok {
				res.Outcome = OutcomeFailed
			}
			res.Message = err.Error()
		}
		d.emit(progress.Event{Type: progress.EventResult, Message: res.Message, Result: res})
	}
	return res, err
}

func (d *deployment) run(ctx context.Context) (*Result, error) {
	o := d.o

	// Connect (every node must answer).
	end := d.step("", "connect", "%d nodes", len(d.inv.Nodes))
	d.conns = o.Conns
	if d.conns == nil {
		conns, errs := inventory.Connect(ctx, d.inv, o.Connect)
		defer inventory.CloseAll(conns)
		if len(errs) > 0 {
			var problems []string
			for _, n := range d.inv.Nodes {
				if e := errs[n.Name]; e != nil {
					problems = append(problems, fmt.Sprintf("node %s is unreachable: %v", n.Name, oneLine(e.Error())))
				}
			}
			end(errors.New("unreachable"), "%s", strings.Join(problems, "; "))
			return d.res, &PreflightError{Problems: problems}
		}
		d.conns = conns
	}
	d.conns = wrapConns(d.conns)
	end(nil, "connected")

	// The .deb: given, or for a rollback the previous version from the nodes.
	debPath := o.Deb
	if debPath == "" {
		if o.Kind != KindRollback {
			return d.res, errors.New("deploy: no .deb given")
		}
		p, cleanup, err := d.fetchPrevious(ctx)
		if err != nil {
			return d.res, err
		}
		defer cleanup()
		debPath = p
	}
	deb, problems := readDeb(debPath)
	if deb != nil {
		d.deb = deb
		d.res.Version, d.res.File, d.res.SHA256 = deb.version, filepath.Base(deb.path), deb.sha256
		if deb.pkg != "" && deb.pkg != d.inv.App.Package {
			problems = append(problems, fmt.Sprintf("%s is the package %q, but the cluster runs %q ([app] package in %s)", filepath.Base(debPath), deb.pkg, d.inv.App.Package, d.inv.Path))
		} else if p := appUserProblem(d.inv, debPath); p != "" {
			problems = append(problems, p)
		}
		if p := modeProblem(deb, d.inv, o.Kind); p != "" {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		d.emit(progress.Event{Type: progress.EventStep, Step: "preflight", Status: progress.StatusFailed, Message: strings.Join(problems, "; ")})
		return d.res, &PreflightError{Problems: problems}
	}

	pf := d.preflight(ctx)
	if pf != nil {
		return d.res, pf
	}
	for _, a := range d.plan.Actions {
		d.emit(progress.Event{Type: progress.EventPlan, Node: a.Node, Message: a.String()})
	}
	if o.DryRun {
		d.res.Outcome = "dry-run"
		d.res.Message = fmt.Sprintf("dry run: %d actions planned, nothing done", len(d.plan.Actions))
		return d.res, nil
	}
	if len(d.plan.Actions) == 0 {
		if o.ForceUnlock {
			// Asked to clear a dead deploy's lock: do so even when
			// there is nothing left to deploy.
			if _, p := d.control(""); p != nil {
				old, err := Unlock(ctx, p.t)
				if err != nil {
					return d.res, err
				}
				if old != nil {
					d.res.TakenOver = old
					d.log("", "removed the deploy lock of %s", old)
				}
			}
		}
		d.res.Outcome = OutcomeNothing
		d.res.Message = fmt.Sprintf("nothing to do: every node runs %s %s", deb.pkg, deb.version)
		return d.res, nil
	}
	if err := d.stage(ctx); err != nil {
		return d.res, err
	}
	if err := d.lock(ctx); err != nil {
		d.unstage(ctx)
		return d.res, err
	}
	return d.execute(ctx)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// members are the names of the nodes that run the app.
func (d *deployment) members() []string {
	var out []string
	for _, n := range d.inv.Members() {
		out = append(out, n.Name)
	}
	return out
}

// control returns a member other than not that pacemaker says is online,
// to run cluster commands on.
func (d *deployment) control(not string) (string, *pcmk) {
	for _, n := range d.members() {
		if n != not && !d.isGone(n) && d.state != nil && d.state.online(n) {
			return n, &pcmk{t: d.conns[n], settle: d.o.Settle}
		}
	}
	for _, n := range d.members() {
		if n != not && !d.isGone(n) {
			return n, &pcmk{t: d.conns[n], settle: d.o.Settle}
		}
	}
	return "", nil
}

// execute runs the plan with the lock held.
func (d *deployment) execute(ctx context.Context) (*Result, error) {
	// Steps on a node finish (or roll back) even when ctx is cancelled:
	// a half-done node is worse than a late stop. Between steps, a
	// cancelled ctx stops the deploy.
	work := context.WithoutCancel(ctx)
	from := map[string]string{}
	for _, n := range d.members() {
		from[n] = d.facts[n].Installed
	}
	d.clearLeftovers(work)
	start := Record{ID: d.id, Event: "start", Kind: d.o.Kind, Package: d.deb.pkg, Version: d.deb.version, From: from,
		Holder: d.o.Holder, Host: d.o.Host, Time: time.Now().UTC()}
	if err := appendHistory(work, d.conns, d.members(), start); err != nil {
		d.log("", "warning: %v", err)
	}

	failed := d.runActions(ctx, work)

	r := d.res
	r.IPMoves = d.ipMoves
	switch {
	case failed == nil:
		r.Outcome = OutcomeSuccess
		var nodes []string
		for _, n := range r.Nodes {
			nodes = append(nodes, n.Node)
		}
		ip := "the floating IP did not move"
		if r.IPMoved != "" {
			ip = "the floating IP moved once (" + r.IPMoved + ")"
		}
		r.Message = fmt.Sprintf("%s %s %s on every node (updated: %s); %s; %.1fs", d.deb.pkg, d.deb.version, verbRuns(len(d.members())), strings.Join(nodes, ", "), ip, time.Since(d.start).Seconds())
		d.prune(work)
	case failed.Outcome == NodeRolledBack:
		r.Outcome = OutcomeRolledBack
	case failed.Outcome == nodeStopped:
		r.Outcome = OutcomeStopped
	default:
		r.Outcome = OutcomeFailed
	}
	if failed != nil {
		r.Message = d.failureSummary(failed)
	}
	end := start
	end.Event, end.Time, end.Outcome, end.Message, end.Nodes, end.IPMoved, end.Took = "end", time.Now().UTC(), r.Outcome, r.Message, r.Nodes, r.IPMoved, time.Since(d.start).Seconds()
	if err := appendHistory(work, d.reachable(work), d.members(), end); err != nil {
		d.log("", "warning: %v", err)
	}
	d.unlock(work)
	r.Took = time.Since(d.start).Seconds()
	d.emit(progress.Event{Type: progress.EventResult, Message: r.Message, Result: r})
	d.resultSent = true
	if failed != nil {
		return r, &Error{Result: r}
	}
	return r, nil
}

func verbRuns(n int) string {
	if n == 1 {
		return "runs"
	}
	return "run"
}

// reachable drops connections of nodes pacemaker says are gone, so that
// writing the history does not wait for a dead node's SSH to time out.
func (d *deployment) reachable(ctx context.Context) map[string]transport.Transport {
	_, p := d.control("")
	if p == nil {
		return d.conns
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := readCrm(cctx, p.t)
	if err != nil {
		return d.conns
	}
	out := map[string]transport.Transport{}
	for n, t := range d.conns {
		if s.online(n) && !d.isGone(n) {
			out[n] = t
		}
	}
	return out
}

// runActions executes the plan; it returns the node result that stopped
// it (nil: all done).
func (d *deployment) runActions(ctx, work context.Context) *NodeResult {
	for _, a := range d.plan.Actions {
		if err := ctx.Err(); err != nil {
			// Not a node failure: the node still runs its version in service.
			nr := NodeResult{Node: a.Node, From: a.From, To: a.To, Outcome: nodeStopped,
				Error: fmt.Sprintf("the %s was stopped (%v) before its next step, %q; %s was not touched", d.o.Kind, context.Cause(ctx), a, a.Node)}
			return &nr
		}
		switch a.Action {
		case ActionUpdate:
			nr := d.update(work, a)
			d.res.Nodes = append(d.res.Nodes, nr)
			if nr.Outcome != NodeUpdated {
				return &d.res.Nodes[len(d.res.Nodes)-1]
			}
		case ActionMoveIP:
			if err := d.moveIP(work, a.Node, a.To); err != nil {
				nr := NodeResult{Node: a.Node, Outcome: NodeFailed, Error: err.Error()}
				return &nr
			}
		}
	}
	return nil
}

// failureSummary says what happened and what every node runs now.
func (d *deployment) failureSummary(f *NodeResult) string {
	var b strings.Builder
	switch f.Outcome {
	case NodeRolledBack:
		fmt.Fprintf(&b, "%s of %s %s failed on %s: %s. %s was rolled back to %s and is in service again; the nodes after it were not touched. ", d.o.Kind, d.deb.pkg, d.deb.version, f.Node, f.Error, f.Node, f.From)
	case nodeStopped, nodeNotStarted:
		fmt.Fprintf(&b, "%s. ", f.Error)
	default:
		fmt.Fprintf(&b, "%s of %s %s failed on %s: %s. ", d.o.Kind, d.deb.pkg, d.deb.version, f.Node, f.Error)
	}
	// What every node runs now, from the cluster itself.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, p := d.control(f.Node)
	var s *crmState
	if p != nil {
		s, _ = readCrm(ctx, p.t)
	}
	var parts []string
	for _, n := range d.members() {
		v := "?"
		if t := d.conns[n]; t != nil && !d.isGone(n) && (s == nil || s.online(n)) {
			cctx, c2 := context.WithTimeout(ctx, 10*time.Second)
			v, _ = host.InstalledVersion(cctx, t, d.inv.App.Package)
			c2()
		}
		state := "unreachable"
		if s != nil && s.online(n) {
			state = "out of service"
			if s.appOn(n) {
				state = "in service"
			}
		}
		parts = append(parts, fmt.Sprintf("%s runs %s (%s)", n, orNone(v), state))
	}
	holder := "nobody"
	if s != nil && s.ipHolder() != "" {
		holder = s.ipHolder()
	}
	fmt.Fprintf(&b, "Now: %s; the floating IP is on %s.", strings.Join(parts, ", "), holder)
	if d.res.IPMoved == "" {
		b.WriteString(" The floating IP did not move.")
	}
	return b.String()
}

func orNone(v string) string {
	if v == "" {
		return "nothing"
	}
	return v
}
