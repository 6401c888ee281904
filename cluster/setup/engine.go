// Package setup makes a cluster what its inventory says, over SSH: a plan
// (Plan: what would change) or an apply (Apply). The setup is a list of
// phases (base, harden, network, ha, storage, app), each a list of Steps
// with a read-only Check and an Apply, run on the nodes in parallel where
// order does not matter; a second apply changes nothing. Each phase has its
// own file; the qdevice certificates (ha) and the DigitalOcean agent (ha,
// provider digitalocean) have theirs. Options.Only = []string{PhaseApp}
// with Options.Package creates the app resource once the first version is
// installed.
package setup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/progress"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/internal/debian"
)

// A Step is one thing a phase makes true on a node. Check is read-only and
// says whether it is already true; Apply makes it true. Apply runs only when
// Check says it is not, and Check must say it is afterwards, so a second
// apply changes nothing.
type Step struct {
	Name  string
	Check func(ctx context.Context, t *Target) (State, error)
	Apply func(ctx context.Context, t *Target) error
	// Hint is shown with a failure: what usually causes it, what to do.
	Hint string
	// File, when the step keeps a generated file, renders it (for review
	// and the golden tests).
	File *FileSpec
}

// FileSpec is a generated file on a node.
type FileSpec struct {
	Path    string
	Content func(ctx context.Context, t *Target) ([]byte, error)
}

// State is what a Check found.
type State struct {
	Done bool
	// Skip means the step does not apply now (e.g. the app resource before
	// the first deploy); it is neither done nor a change.
	Skip bool
	// Reason says what would change (or why it is skipped), e.g.
	// "ufw inactive", "3 packages missing: git htop atop".
	Reason string
}

// Done, Todo and Skipped build States.
func Done() State                           { return State{Done: true} }
func Todo(format string, args ...any) State { return State{Reason: fmt.Sprintf(format, args...)} }
func Skipped(format string, args ...any) State {
	return State{Skip: true, Reason: fmt.Sprintf(format, args...)}
}
func doneIf(ok bool, format string, a ...any) State {
	if ok {
		return Done()
	}
	return Todo(format, a...)
}

// A Stage is steps run on a set of nodes: each node works through the steps
// in order, the nodes in parallel. A Phase's stages run one after another.
type Stage struct {
	Nodes []inventory.Node
	Steps []Step
}

// A Phase is one part of the setup: base, harden, network, ha, storage, app.
type Phase struct {
	Name   string
	Stages []Stage
}

// Phase names, in the order apply runs them.
const (
	PhaseBase    = "base"
	PhaseHarden  = "harden"
	PhaseNetwork = "network"
	PhaseHA      = "ha"
	PhaseStorage = "storage"
	PhaseApp     = "app"
)

// PhaseNames lists the phases in order.
var PhaseNames = []string{PhaseBase, PhaseHarden, PhaseNetwork, PhaseHA, PhaseStorage, PhaseApp}

// Target is one node as a step sees it.
type Target struct {
	Node inventory.Node
	T    transport.Transport
	Run  *Run
}

// Inv is the inventory.
func (t *Target) Inv() *inventory.Inventory { return t.Run.Inv }

// Sh runs a command on the node and returns its trimmed stdout.
func (t *Target) Sh(ctx context.Context, cmd string) (string, error) {
	return transport.Output(ctx, t.T, cmd)
}

// Peer is another node's target.
func (t *Target) Peer(name string) *Target {
	n, _ := t.Run.Inv.Node(name)
	return &Target{Node: n, T: t.Run.Conns[name], Run: t.Run}
}

// Release is the node's Debian release, read once per run.
func (t *Target) Release(ctx context.Context) (debian.Release, error) {
	v, err := t.Run.cached("release "+t.Node.Name, func() (any, error) { return host.Release(ctx, t.T) })
	if err != nil {
		return debian.Release{}, fmt.Errorf("%s: %w", t.Node.Name, err)
	}
	return v.(debian.Release), nil
}

// Options are what plan and apply were asked for.
type Options struct {
	// Only limits to these phases (empty: all).
	Only []string
	// Package is a .deb installed on the nodes that run the app when it is
	// not installed yet (the first version; later ones come by deploy).
	Package string
	// Progress receives the events of the plan or apply (see Summary; nil:
	// discard). TextProgress prints them as the debship command does.
	Progress progress.Progress
	// Relogin opens a fresh connection to a node, to prove that logging in
	// still works after sshd was changed. Nil: the sshd step refuses to run.
	Relogin func(ctx context.Context, n inventory.Node) (transport.Transport, error)
	// DOToken returns the DigitalOcean API token (provider digitalocean).
	DOToken func() (string, error)
}

// Run is one plan or apply over a connected cluster.
type Run struct {
	Inv   *inventory.Inventory
	Conns map[string]transport.Transport
	Opts  Options

	// secrets are read once, before any node is contacted: a missing or
	// readable-by-others file fails the run before anything changes.
	secrets secrets

	mu    sync.Mutex
	cache map[string]any

	// migrated: this run ran the first install's migration (migrateStep),
	// which is then done although the app resource does not exist yet.
	migrated atomic.Bool
}

type secrets struct {
	fencePassword string // "" without password-file/password-env
	doToken       string // provider or fence agent digitalocean only
}

// NewRun prepares a plan or apply; conns has a transport for every node.
func NewRun(inv *inventory.Inventory, conns map[string]transport.Transport, o Options) (*Run, error) {
	r, err := prepare(inv, o)
	if err != nil {
		return nil, err
	}
	for _, n := range inv.Nodes {
		if conns[n.Name] == nil {
			return nil, fmt.Errorf("no connection to node %s", n.Name)
		}
	}
	r.Conns = conns
	return r, nil
}

// prepare checks what plan and apply need besides a valid inventory
// (fencing, or its risk accepted; the phases asked for) and reads the
// secrets, without a connection.
func prepare(inv *inventory.Inventory, o Options) (*Run, error) {
	if err := inv.RequireFencing(); err != nil {
		return nil, err
	}
	if err := packageProblem(inv, o.Package); err != nil {
		return nil, err
	}
	for _, p := range o.Only {
		if !contains(PhaseNames, p) {
			return nil, fmt.Errorf("unknown phase %q; the phases are %s", p, strings.Join(PhaseNames, ", "))
		}
	}
	o.defaults()
	r := &Run{Inv: inv, Opts: o, cache: map[string]any{}}
	var err error
	if r.secrets.fencePassword, err = inv.FencePassword(); err != nil {
		return nil, err
	}
	if d, _ := inv.DOConfig(); d != nil {
		get := o.DOToken
		if get == nil {
			get = inv.DOToken
		}
		if r.secrets.doToken, err = get(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Run) target(n inventory.Node) *Target { return &Target{Node: n, T: r.Conns[n.Name], Run: r} }

// Phases returns the phases selected by Options.Only, in order.
func (r *Run) Phases() []Phase {
	var out []Phase
	for _, p := range allPhases(r.Inv, r.Opts) {
		if len(r.Opts.Only) == 0 || contains(r.Opts.Only, p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// Warnings are things an operator must know before applying.
func (r *Run) Warnings() []string { return r.Inv.Warnings() }

// StepError is a step that failed on a node.
type StepError struct {
	Phase, Node, Step string
	Err               error
	Hint              string
}

func (e *StepError) Error() string {
	s := fmt.Sprintf("%s: %s: %s: %v", e.Node, e.Phase, e.Step, e.Err)
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}

func (e *StepError) Unwrap() error { return e.Err }

// Plan runs every Check and reports what apply would change. It changes
// nothing. Steps that depend on earlier ones (not yet applied) show as
// changes too.
func (r *Run) Plan(ctx context.Context) (*Report, error) {
	return r.planPhases(ctx, r.Phases())
}

func (r *Run) planPhases(ctx context.Context, phases []Phase) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	var mu sync.Mutex
	var errs []error
	var done []PhaseSummary
	for _, ph := range phases {
		phStart := time.Now()
		// A check that fails is reported and the plan goes on: the other
		// checks still say what apply would do.
		r.eachStage(ph, func(t *Target, s Step) error {
			state, err := s.Check(ctx, t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, &StepError{Phase: ph.Name, Node: t.Node.Name, Step: s.Name, Err: err, Hint: s.Hint})
				return nil
			}
			addChange(rep, Change{Phase: ph.Name, Node: t.Node.Name, Step: s.Name, Reason: state.Reason, Skip: state.Skip}, state.Done)
			return nil
		})
		done = append(done, PhaseSummary{Name: ph.Name, Took: time.Since(phStart).Seconds()})
	}
	sortReport(rep, r.Inv)
	rep.Took = time.Since(start)
	r.emitPlan(rep, errs)
	emitResult(r.Opts.Progress, ModePlan, done, rep, rep.Took, errs...)
	return rep, errors.Join(errs...)
}

// Apply runs the phases: in each stage every node applies the steps whose
// Check says they are not done, nodes in parallel. A failing step stops that
// node's stage, and the phase stops after the stage; the error names the
// node, phase, step, command, its output and a hint.
func (r *Run) Apply(ctx context.Context) (*Report, error) {
	return r.runPhases(ctx, r.Phases())
}

func (r *Run) runPhases(ctx context.Context, phases []Phase) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	var mu sync.Mutex
	var done []PhaseSummary
	for _, ph := range phases {
		phStart := time.Now()
		before := len(rep.Changes)
		phase := progress.Event{Type: progress.EventStep, Phase: ph.Name, Status: progress.StatusRunning}
		r.emit(phase)
		errs := r.eachStage(ph, func(t *Target, s Step) error {
			ch, already, err := r.applyStep(ctx, ph.Name, t, s)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			addChange(rep, ch, already)
			return nil
		})
		if len(errs) > 0 {
			phase.Status, phase.Message = progress.StatusFailed, fmt.Sprintf("%d changed, %d failed", len(rep.Changes)-before, len(errs))
			return r.applied(rep, start, append(done, r.endPhase(phase, phStart)), errs...)
		}
		phase.Status, phase.Message = progress.StatusOK, fmt.Sprintf("%d changed", len(rep.Changes)-before)
		if len(rep.Changes) > before {
			phase.Status = progress.StatusChanged
		}
		done = append(done, r.endPhase(phase, phStart))
	}
	return r.applied(rep, start, done)
}

// eachStage runs the stages of a phase one after another; in a stage the
// nodes run in parallel, each its steps in order, and a node stops at the
// first step that returns an error. A stage with errors is the phase's last:
// its errors are returned once all its nodes have stopped, since later stages
// build on it. step is called on the node's goroutine.
func (r *Run) eachStage(ph Phase, step func(t *Target, s Step) error) []error {
	var mu sync.Mutex
	for _, st := range ph.Stages {
		var wg sync.WaitGroup
		var errs []error
		for _, n := range st.Nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := r.target(n)
				for _, s := range st.Steps {
					if err := step(t, s); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			return errs
		}
	}
	return nil
}

// endPhase reports the end of a phase of an apply.
func (r *Run) endPhase(e progress.Event, start time.Time) PhaseSummary {
	e.Took = time.Since(start).Seconds()
	r.emit(e)
	return PhaseSummary{Name: e.Phase, Took: e.Took}
}

// applied ends an apply.
func (r *Run) applied(rep *Report, start time.Time, phases []PhaseSummary, errs ...error) (*Report, error) {
	sortReport(rep, r.Inv)
	rep.Took = time.Since(start)
	emitResult(r.Opts.Progress, ModeApply, phases, rep, rep.Took, errs...)
	return rep, errors.Join(errs...)
}

func (r *Run) applyStep(ctx context.Context, phase string, t *Target, s Step) (Change, bool, error) {
	end := r.stepEvent(phase, t, s)
	fail := func(err error) (Change, bool, error) {
		end(progress.StatusFailed, err.Error())
		return Change{}, false, &StepError{Phase: phase, Node: t.Node.Name, Step: s.Name, Err: err, Hint: s.Hint}
	}
	state, err := s.Check(ctx, t)
	if err != nil {
		return fail(fmt.Errorf("check: %w", err))
	}
	if state.Done {
		end(progress.StatusOK, "")
		return Change{}, true, nil
	}
	ch := Change{Phase: phase, Node: t.Node.Name, Step: s.Name, Reason: state.Reason}
	if state.Skip {
		ch.Skip = true
		end(progress.StatusSkipped, state.Reason)
		return ch, false, nil
	}
	start := time.Now()
	if err := s.Apply(ctx, t); err != nil {
		return fail(err)
	}
	after, err := s.Check(ctx, t)
	if err != nil {
		return fail(fmt.Errorf("check after apply: %w", err))
	}
	if !after.Done {
		return fail(fmt.Errorf("applied, but the check still finds: %s", after.Reason))
	}
	ch.Took = time.Since(start)
	end(progress.StatusChanged, state.Reason)
	return ch, false, nil
}

// addChange counts a step that was done already, or lists it as skipped or
// changed (to be changed, in a plan).
func addChange(rep *Report, ch Change, done bool) {
	switch {
	case done:
		rep.Done++
	case ch.Skip:
		rep.Skipped = append(rep.Skipped, ch)
	default:
		rep.Changes = append(rep.Changes, ch)
	}
}

// sortReport orders changes by phase, then node order in the inventory.
func sortReport(rep *Report, inv *inventory.Inventory) {
	phase := map[string]int{}
	for i, p := range PhaseNames {
		phase[p] = i
	}
	node := map[string]int{}
	for i, n := range inv.Nodes {
		node[n.Name] = i
	}
	for _, l := range [][]Change{rep.Changes, rep.Skipped} {
		sort.SliceStable(l, func(i, j int) bool {
			if phase[l[i].Phase] != phase[l[j].Phase] {
				return phase[l[i].Phase] < phase[l[j].Phase]
			}
			return node[l[i].Node] < node[l[j].Node]
		})
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// cached computes a value once per run (e.g. a peer's public key).
func (r *Run) cached(key string, f func() (any, error)) (any, error) {
	r.mu.Lock()
	if v, ok := r.cache[key]; ok {
		r.mu.Unlock()
		return v, nil
	}
	r.mu.Unlock()
	v, err := f()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cache[key] = v
	r.mu.Unlock()
	return v, nil
}

// forget drops a cached value after the state behind it changed.
func (r *Run) forget(key string) {
	r.mu.Lock()
	delete(r.cache, key)
	r.mu.Unlock()
}

// Plan connects to every node (all must answer, or nothing is done) and
// reports what Apply would change. It changes nothing.
func Plan(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions, o Options) (*Report, error) {
	return connected(ctx, inv, co, o, ModePlan, (*Run).Plan)
}

// Apply connects to every node (all must answer, or nothing is done) and
// applies the phases.
func Apply(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions, o Options) (*Report, error) {
	return connected(ctx, inv, co, o, ModeApply, (*Run).Apply)
}

func connected(ctx context.Context, inv *inventory.Inventory, co inventory.ConnectOptions, o Options, mode string, do func(*Run, context.Context) (*Report, error)) (*Report, error) {
	start := time.Now()
	o.defaults()
	warn(o.Progress, inv)
	if o.Relogin == nil {
		o.Relogin = inventory.Relogin(inv, co)
	}
	r, err := prepare(inv, o)
	if err != nil {
		emitResult(o.Progress, mode, nil, nil, time.Since(start), err)
		return nil, err
	}
	conns, err := inventory.ConnectAll(ctx, inv, co)
	if err != nil {
		emitResult(o.Progress, mode, nil, nil, time.Since(start), err)
		return nil, err
	}
	defer inventory.CloseAll(conns)
	r.Conns = conns
	return do(r, ctx)
}
