// Package report is what a plan or an apply of cluster/setup reports: the
// changes, the summary that ends its progress events, the plan as
// "debship cluster plan" prints it, and the text progress of "cluster
// apply".
package report

import (
	"fmt"
	"io"
	"sync"
	"time"

	"gitlab.com/debship/debship/cluster/progress"
)

// Change is one step that would change (plan) or changed (apply).
type Change struct {
	Phase  string        `json:"phase"`
	Node   string        `json:"node"`
	Step   string        `json:"step"`
	Reason string        `json:"reason"`
	Took   time.Duration `json:"took_ns,omitempty"`
	Skip   bool          `json:"skipped,omitempty"`
}

// Report is the outcome of a plan or an apply.
type Report struct {
	Changes []Change      `json:"changes"`
	Skipped []Change      `json:"skipped,omitempty"`
	Done    int           `json:"already_done"`
	Took    time.Duration `json:"took_ns"`
}

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

// WritePlan prints a plan: per phase and node what would change, then a
// summary; "nothing to do" when the cluster is as the inventory says.
func WritePlan(w io.Writer, rep *Report) {
	if len(rep.Changes) == 0 {
		fmt.Fprintf(w, "nothing to do: %d steps already done", rep.Done)
		if len(rep.Skipped) > 0 {
			fmt.Fprintf(w, ", %d waiting", len(rep.Skipped))
		}
		fmt.Fprintln(w)
		writeSkipped(w, rep)
		return
	}
	phase := ""
	for _, c := range rep.Changes {
		if c.Phase != phase {
			phase = c.Phase
			fmt.Fprintf(w, "%s:\n", phase)
		}
		fmt.Fprintf(w, "  %-8s %-34s %s\n", c.Node, c.Step, c.Reason)
	}
	writeSkipped(w, rep)
	fmt.Fprintf(w, "%d to change, %d already done\n", len(rep.Changes), rep.Done)
}

func writeSkipped(w io.Writer, rep *Report) {
	if len(rep.Skipped) > 0 {
		fmt.Fprintln(w, "waiting:")
	}
	for _, c := range rep.Skipped {
		fmt.Fprintf(w, "  %-8s %-34s %s\n", c.Node, c.Step, c.Reason)
	}
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
