package setup

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/progress"
)

// A plan or an apply reports its progress as cluster/progress events, the
// same as a deploy:
//
//   - log: each warning of the inventory ("WARNING: …"), before connecting.
//   - plan (a plan only): one per step that would change (no status), that
//     waits (StatusSkipped) or whose check failed (StatusFailed, the error
//     as the message), with its phase, node and step; in the order of
//     WritePlan.
//   - step (an apply only): a phase starts (StatusRunning, no node) and
//     ends (StatusOK or StatusChanged, "N changed" as the message, or
//     StatusFailed); each step on each node starts (StatusRunning) and ends
//     StatusOK (it was done already), StatusChanged (applied; the message is
//     what changed), StatusSkipped (it waits; the message says for what) or
//     StatusFailed (the error).
//   - result: last, with a *Summary; also when the nodes could not be
//     connected to.

// Summary is the result of a plan or an apply, the Result of its last
// event.
type Summary struct {
	Mode    string `json:"mode"`    // ModePlan or ModeApply
	Outcome string `json:"outcome"` // OutcomeSuccess or OutcomeFailed
	// Phases are the phases checked (plan) or applied, in order; an apply
	// that failed ends with the failed phase. None when the run could not
	// start (a node did not answer).
	Phases  []PhaseSummary `json:"phases"`
	Changes int            `json:"changes"` // steps changed (apply) or to change (plan)
	Done    int            `json:"already_done"`
	Waiting int            `json:"waiting"` // steps skipped until something else happened
	Failed  []Failure      `json:"failed,omitempty"`
	Took    float64        `json:"took_s"`
}

// PhaseSummary is one phase of a Summary.
type PhaseSummary struct {
	Name    string  `json:"name"`
	Changes int     `json:"changes"`
	Waiting int     `json:"waiting"`
	Took    float64 `json:"took_s"`
}

// Failure is a step that failed on a node (a StepError).
type Failure struct {
	Phase string `json:"phase"`
	Node  string `json:"node"`
	Step  string `json:"step"`
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
}

// Summary modes and outcomes.
const (
	ModePlan       = "plan"
	ModeApply      = "apply"
	OutcomeSuccess = "success"
	OutcomeFailed  = "failed"
)

func (o *Options) defaults() {
	if o.Progress == nil {
		o.Progress = progress.Discard
	}
}

func emit(p progress.Progress, e progress.Event) {
	e.Time = time.Now()
	p.Event(e)
}

// warn reports the inventory's warnings, before anything is done.
func warn(p progress.Progress, inv *inventory.Inventory) {
	for _, w := range inv.Warnings() {
		emit(p, progress.Event{Type: progress.EventLog, Message: "WARNING: " + w})
	}
}

func (r *Run) emit(e progress.Event) { emit(r.Opts.Progress, e) }

// stepEvent reports that a step on a node started and returns the function
// that reports its end.
func (r *Run) stepEvent(phase string, t *Target, s Step) func(status, msg string) {
	start := time.Now()
	e := progress.Event{Type: progress.EventStep, Phase: phase, Node: t.Node.Name, Step: s.Name, Status: progress.StatusRunning}
	r.emit(e)
	return func(status, msg string) {
		e.Status, e.Message, e.Took = status, msg, time.Since(start).Seconds()
		r.emit(e)
	}
}

// emitPlan reports a plan's changes, waiting steps and failed checks.
func (r *Run) emitPlan(rep *Report, errs []error) {
	for _, c := range rep.Changes {
		r.emit(progress.Event{Type: progress.EventPlan, Phase: c.Phase, Node: c.Node, Step: c.Step, Message: c.Reason})
	}
	for _, c := range rep.Skipped {
		r.emit(progress.Event{Type: progress.EventPlan, Phase: c.Phase, Node: c.Node, Step: c.Step, Status: progress.StatusSkipped, Message: c.Reason})
	}
	for _, f := range failures(errs) {
		r.emit(progress.Event{Type: progress.EventPlan, Phase: f.Phase, Node: f.Node, Step: f.Step, Status: progress.StatusFailed, Message: f.Error})
	}
}

func failures(errs []error) []Failure {
	var out []Failure
	for _, err := range errs {
		var se *StepError
		if errors.As(err, &se) {
			out = append(out, Failure{Phase: se.Phase, Node: se.Node, Step: se.Step, Error: se.Err.Error(), Hint: se.Hint})
		}
	}
	return out
}

// emitResult sends the last event of a plan or an apply: phases are those
// run (with their times), rep what they found (nil: none ran), errs why
// it failed.
func emitResult(p progress.Progress, mode string, phases []PhaseSummary, rep *Report, took time.Duration, errs ...error) {
	if phases == nil {
		phases = []PhaseSummary{} // "phases": [], not null
	}
	s := &Summary{Mode: mode, Outcome: OutcomeSuccess, Phases: phases, Failed: failures(errs), Took: took.Seconds()}
	if rep != nil {
		s.Changes, s.Done, s.Waiting = len(rep.Changes), rep.Done, len(rep.Skipped)
		for i := range s.Phases {
			ph := &s.Phases[i]
			for _, c := range rep.Changes {
				if c.Phase == ph.Name {
					ph.Changes++
				}
			}
			for _, c := range rep.Skipped {
				if c.Phase == ph.Name {
					ph.Waiting++
				}
			}
		}
	}
	var msg string
	switch err := errors.Join(errs...); {
	case err != nil && len(s.Failed) == 0:
		s.Outcome, msg = OutcomeFailed, err.Error()
	case err != nil:
		s.Outcome = OutcomeFailed
		var l []string
		for _, f := range s.Failed {
			l = append(l, fmt.Sprintf("%s: %s: %s: %s", f.Node, f.Phase, f.Step, f.Error))
		}
		msg = "failed: " + strings.Join(l, "; ")
	case mode == ModePlan && s.Changes == 0:
		msg = fmt.Sprintf("nothing to do: %d steps already done, %d waiting", s.Done, s.Waiting)
	case mode == ModePlan:
		msg = fmt.Sprintf("%d to change, %d already done, %d waiting", s.Changes, s.Done, s.Waiting)
	default:
		msg = fmt.Sprintf("%d changes, %d steps already done, %d waiting", s.Changes, s.Done, s.Waiting)
	}
	emit(p, progress.Event{Type: progress.EventResult, Message: msg, Result: s})
}

// TextProgress writes a plan's or an apply's events as "debship cluster
// plan" and "cluster apply" print them: the plan (WritePlan) and an
// apply's summary line to out; the warnings and an apply's steps (a line
// per phase, per step changed, skipped or FAILED, a phase's count of
// changes) to log. A failed plan writes no plan: the error says why.
func TextProgress(out, log io.Writer) progress.Progress {
	return &textProgress{out: out, log: log}
}

type textProgress struct {
	mu       sync.Mutex
	out, log io.Writer
	plan     Report
}

func (p *textProgress) Close() {}

func (p *textProgress) Event(e progress.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Type {
	case progress.EventLog:
		fmt.Fprintln(p.log, e.Message)
	case progress.EventPlan:
		c := Change{Phase: e.Phase, Node: e.Node, Step: e.Step, Reason: e.Message}
		switch e.Status {
		case "":
			p.plan.Changes = append(p.plan.Changes, c)
		case progress.StatusSkipped:
			c.Skip = true
			p.plan.Skipped = append(p.plan.Skipped, c)
		}
	case progress.EventStep:
		p.step(e)
	case progress.EventResult:
		s, ok := e.Result.(*Summary)
		switch {
		case !ok || s.Outcome != OutcomeSuccess && s.Mode == ModePlan:
		case s.Mode == ModePlan:
			p.plan.Done = s.Done
			WritePlan(p.out, &p.plan)
		case len(s.Phases) > 0:
			fmt.Fprintf(p.out, "%d changes, %d steps already done, %d waiting (%s)\n", s.Changes, s.Done, s.Waiting, seconds(s.Took))
		}
	}
}

func (p *textProgress) step(e progress.Event) {
	if e.Node == "" { // a phase
		switch e.Status {
		case progress.StatusRunning:
			fmt.Fprintf(p.log, "== %s\n", e.Phase)
		case progress.StatusOK, progress.StatusChanged:
			fmt.Fprintf(p.log, "   %s: %s (%s)\n", e.Phase, e.Message, seconds(e.Took))
		}
		return
	}
	switch e.Status {
	case progress.StatusChanged:
		fmt.Fprintf(p.log, "%-8s %-34s changed: %s (%s)\n", e.Node, e.Step, e.Message, seconds(e.Took))
	case progress.StatusSkipped:
		fmt.Fprintf(p.log, "%-8s %-34s skipped: %s\n", e.Node, e.Step, e.Message)
	case progress.StatusFailed:
		fmt.Fprintf(p.log, "%-8s %-34s FAILED\n", e.Node, e.Step)
	}
}

// seconds is an event's time as the text shows it.
func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond)
}
