// Package progress is the progress events of setup and deploy and their
// writers: JSON lines for machines (--json), plain log lines, and a live
// display for a person at a terminal. Setup (cluster/setup) and deploy
// (cluster/deploy) emit the same Event, so one consumer reads either.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Event is one progress report of a setup or a deploy. Node is empty for
// cluster-wide steps (a deploy's preflight and lock, a setup's phase; the
// floating IP's move is reported on the node it leaves).
type Event struct {
	Time   time.Time `json:"time"`
	Deploy string    `json:"deploy,omitempty"` // deploy ID (deploy only)
	Type   string    `json:"type"`             // EventStep, EventLog, EventPlan, EventResult
	Phase  string    `json:"phase,omitempty"`  // the setup phase (setup only)
	Node   string    `json:"node,omitempty"`
	Step   string    `json:"step,omitempty"`
	// Status is a step's: StatusRunning, then StatusOK, StatusChanged,
	// StatusFailed or StatusSkipped. A setup plan's events have
	// StatusSkipped (the step waits) or StatusFailed (its check failed).
	Status  string  `json:"status,omitempty"`
	Message string  `json:"message,omitempty"`
	Took    float64 `json:"took_s,omitempty"` // seconds, for finished steps
	// Result is the outcome, set on the EventResult event only: a
	// *deploy.Result or a *setup.Summary. Both have an "outcome" ("success",
	// "failed", …); a JSON reader knows which from the command it ran.
	Result any `json:"result,omitempty"`
}

// Event types.
const (
	EventStep   = "step"   // a step of a node (or of the cluster) started or ended
	EventLog    = "log"    // a line worth reading (a warning, a check that passed)
	EventPlan   = "plan"   // the plan, one event per planned action
	EventResult = "result" // the last event of a deploy, a setup plan or apply
)

// Step statuses.
const (
	StatusRunning = "running"
	StatusOK      = "ok"      // done; for a setup step: nothing to change
	StatusChanged = "changed" // a setup step changed the node
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

// Progress receives a setup's or a deploy's events. Implementations must
// be safe for concurrent use (nodes work in parallel).
type Progress interface {
	Event(Event)
	// Close ends the output (a live display leaves its last state).
	Close()
}

// Discard is a Progress that drops everything.
var Discard Progress = discard{}

type discard struct{}

func (discard) Event(Event) {}
func (discard) Close()      {}

// JSONProgress writes one JSON object per event and line, for machines.
func JSONProgress(w io.Writer) Progress { return &jsonProgress{enc: json.NewEncoder(w)} }

type jsonProgress struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (p *jsonProgress) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.enc.Encode(e)
}
func (p *jsonProgress) Close() {}

// LinesProgress writes plain log lines ("15:04:05 node2  install  ok  …"),
// for CI logs and files: nothing is redrawn.
func LinesProgress(w io.Writer) Progress { return &linesProgress{w: w} }

type linesProgress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *linesProgress) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if line := plainLine(e); line != "" {
		fmt.Fprintln(p.w, e.Time.Format("15:04:05")+" "+line)
	}
}
func (p *linesProgress) Close() {}

// plainLine is an event as one line without the time.
func plainLine(e Event) string {
	node := e.Node
	if node == "" {
		node = "cluster"
	}
	switch e.Type {
	case EventLog:
		return fmt.Sprintf("%-8s %s", node, e.Message)
	case EventPlan:
		return fmt.Sprintf("%-8s plan: %s", node, e.Message)
	case EventStep:
		if e.Status == StatusRunning {
			return fmt.Sprintf("%-8s %-16s ...  %s", node, e.Step, e.Message)
		}
		took := ""
		if e.Took > 0 {
			took = fmt.Sprintf(" (%.1fs)", e.Took)
		}
		return fmt.Sprintf("%-8s %-16s %s%s  %s", node, e.Step, strings.ToUpper(e.Status), took, e.Message)
	}
	// The result is the caller's to print (stdout, or the error).
	return ""
}

// IsTerminal reports whether f is a terminal (a live display makes sense).
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// TerminalProgress shows one live line per node (its current step, how
// long it has been running, the last message) under the log lines, redrawn
// in place; for a person at a terminal.
func TerminalProgress(f *os.File, nodes []string) Progress {
	p := &ttyProgress{w: f, fd: int(f.Fd()), lines: map[string]*ttyLine{}, stop: make(chan struct{}), done: make(chan struct{})}
	p.order = append([]string{"cluster"}, nodes...)
	for _, n := range p.order {
		p.lines[n] = &ttyLine{}
	}
	go p.tick()
	return p
}

type ttyLine struct {
	step, status, msg string
	since             time.Time
	took              float64
}

type ttyProgress struct {
	mu     sync.Mutex
	w      io.Writer
	fd     int
	order  []string
	lines  map[string]*ttyLine
	drawn  int // lines of the live block currently on screen
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

var spinner = []string{"|", "/", "-", `\`}

func (p *ttyProgress) tick() {
	defer close(p.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

func (p *ttyProgress) width() int {
	ws, err := unix.IoctlGetWinsize(p.fd, unix.TIOCGWINSZ)
	if err != nil || ws.Col < 20 {
		return 100
	}
	return int(ws.Col)
}

// clear moves the cursor to the top of the live block and erases it.
func (p *ttyProgress) clear() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	fmt.Fprint(p.w, "\r\x1b[J")
	p.drawn = 0
}

func (p *ttyProgress) redraw() {
	if p.closed {
		return
	}
	p.clear()
	w := p.width() - 1
	var b strings.Builder
	n := 0
	for _, name := range p.order {
		l := p.lines[name]
		if l.step == "" {
			continue
		}
		var s string
		switch l.status {
		case StatusRunning:
			el := time.Since(l.since)
			s = fmt.Sprintf("%s %-8s %-16s %5.1fs  %s", spinner[int(el/(250*time.Millisecond))%len(spinner)], name, l.step, el.Seconds(), l.msg)
		default:
			mark := "✓"
			if l.status == StatusFailed {
				mark = "✗"
			} else if l.status == StatusSkipped {
				mark = "-"
			}
			s = fmt.Sprintf("%s %-8s %-16s %5.1fs  %s", mark, name, l.step, l.took, l.msg)
		}
		if r := []rune(s); len(r) > w {
			s = string(r[:w])
		}
		b.WriteString(s + "\n")
		n++
	}
	fmt.Fprint(p.w, b.String())
	p.drawn = n
}

func (p *ttyProgress) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	name := e.Node
	if name == "" {
		name = "cluster"
	}
	l, ok := p.lines[name]
	if !ok {
		l = &ttyLine{}
		p.lines[name] = l
		p.order = append(p.order, name)
	}
	switch e.Type {
	case EventStep:
		if e.Status == StatusRunning {
			l.step, l.status, l.msg, l.since = e.Step, e.Status, e.Message, e.Time
		} else {
			l.step, l.status, l.msg, l.took = e.Step, e.Status, e.Message, e.Took
			// A finished step also goes to the scrollback, so that the
			// whole story stays readable after the live lines change.
			p.clear()
			fmt.Fprintln(p.w, "  "+plainLine(e))
		}
	case EventLog, EventPlan:
		p.clear()
		fmt.Fprintln(p.w, plainLine(e))
	}
	p.redraw()
}

func (p *ttyProgress) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.clear()
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
}
