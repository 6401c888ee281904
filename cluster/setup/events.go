package setup

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/progress"
	"gitlab.com/debship/debship/cluster/setup/report"
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

// The result types, the plan's text and the text progress are in
// cluster/setup/report, so that this package is about what is set up.
type (
	Summary      = report.Summary
	PhaseSummary = report.PhaseSummary
	Failure      = report.Failure
	Change       = report.Change
	Report       = report.Report
)

// Summary modes and outcomes.
const (
	ModePlan       = report.ModePlan
	ModeApply      = report.ModeApply
	OutcomeSuccess = report.OutcomeSuccess
	OutcomeFailed  = report.OutcomeFailed
)

// WritePlan prints a plan (report.WritePlan).
func WritePlan(w io.Writer, rep *Report) { report.WritePlan(w, rep) }

// TextProgress writes a plan's or an apply's events for people
// (report.TextProgress).
func TextProgress(out, log io.Writer) progress.Progress { return report.TextProgress(out, log) }
