package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
)

// HistoryFile is where every member appends a line per deploy event. Each
// member keeps the whole history (not only its own part), so the history
// survives the loss of a node; `cluster history` merges what the nodes
// that answer have.
const HistoryFile = "/var/lib/debship/deploy-history.jsonl"

// Outcomes of a deploy.
const (
	OutcomeSuccess    = "success"     // every node runs the version
	OutcomeRolledBack = "rolled-back" // a node failed and was put back to its previous version
	OutcomeFailed     = "failed"      // stopped; see the message (a node may be out of service)
	OutcomeStopped    = "stopped"     // cancelled (Ctrl-C, shutdown) between two nodes; every node in service
	OutcomeNothing    = "nothing-to-do"
	OutcomeRefused    = "refused"     // a preflight check failed; nothing changed (never in the history)
	OutcomeRunning    = "running"     // started, no end recorded, the lock is held by it
	OutcomeVanished   = "interrupted" // started, no end recorded, nobody holds its lock
)

// Record is one line of the history: a deploy's start ("start") or its end
// ("end", with the outcome).
type Record struct {
	ID      string            `json:"id"`
	Event   string            `json:"event"` // "start" or "end"
	Kind    string            `json:"kind"`  // KindDeploy or KindRollback
	Package string            `json:"package"`
	Version string            `json:"version"`
	From    map[string]string `json:"from,omitempty"` // node -> version before
	Holder  string            `json:"holder"`
	Host    string            `json:"host"`
	Time    time.Time         `json:"time"`
	Outcome string            `json:"outcome,omitempty"`
	Message string            `json:"message,omitempty"`
	Nodes   []NodeResult      `json:"nodes,omitempty"`
	IPMoved string            `json:"ip_moved,omitempty"` // "node1 -> node2"
	Took    float64           `json:"took_s,omitempty"`
}

// Entry is one deploy in the history: its start and end merged.
type Entry struct {
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Package  string            `json:"package"`
	Version  string            `json:"version"`
	From     map[string]string `json:"from,omitempty"`
	Holder   string            `json:"holder"`
	Host     string            `json:"host"`
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished,omitempty"`
	Outcome  string            `json:"outcome"`
	Message  string            `json:"message,omitempty"`
	Nodes    []NodeResult      `json:"nodes,omitempty"`
	IPMoved  string            `json:"ip_moved,omitempty"`
	Took     float64           `json:"took_s,omitempty"`
	// Seen lists the nodes whose history has this deploy.
	Seen []string `json:"seen_on"`
}

// appendHistory adds a record on every node given, in parallel. A node that
// fails is reported, the others still get the record.
//
// The record, which may hold a migration's output, travels as an upload
// (the SSH session's stdin), never on a command line, where any user of
// the node sees it in ps. It is uploaded beside the history and appended
// from there: a record cut by a crash is skipped by parseHistory, one never
// appended is left as a file of its own. Both files are root's alone.
func appendHistory(ctx context.Context, conns map[string]transport.Transport, nodes []string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	rec := path.Join(path.Dir(HistoryFile), ".record-"+r.ID+"-"+r.Event)
	appendCmd := fmt.Sprintf("umask 077; cat %s >> %s && chmod 600 %s && rm -f %s",
		transport.Quote(rec), HistoryFile, HistoryFile, transport.Quote(rec))
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for _, n := range nodes {
		t := conns[n]
		if t == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := t.Upload(ctx, rec, b, 0o600)
			if err == nil {
				_, _, err = t.Run(ctx, appendCmd)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("record the deploy in the history: %s", strings.Join(errs, "; "))
	}
	return nil
}

func parseHistory(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			// A line cut by a crash while appending: skip it, keep the rest.
			continue
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// mergeHistory turns the records of several nodes into entries, oldest
// first. lock is the current deploy lock (nil: none): a started deploy
// without an end is running if it holds the lock, else interrupted.
func mergeHistory(perNode map[string][]Record, lock *Lock) []Entry {
	byID := map[string]*Entry{}
	var nodes []string
	for n := range perNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		for _, r := range perNode[n] {
			e := byID[r.ID]
			if e == nil {
				e = &Entry{ID: r.ID}
				byID[r.ID] = e
			}
			if !contains(e.Seen, n) {
				e.Seen = append(e.Seen, n)
			}
			if e.Kind == "" {
				e.Kind, e.Package, e.Version, e.Holder, e.Host = r.Kind, r.Package, r.Version, r.Holder, r.Host
			}
			if len(e.From) == 0 {
				e.From = r.From
			}
			switch r.Event {
			case "start":
				e.Started = r.Time
			case "end":
				e.Finished, e.Outcome, e.Message, e.Nodes, e.IPMoved, e.Took = r.Time, r.Outcome, r.Message, r.Nodes, r.IPMoved, r.Took
				if e.Started.IsZero() {
					e.Started = r.Time.Add(-time.Duration(r.Took * float64(time.Second)))
				}
			}
		}
	}
	var out []Entry
	for _, e := range byID {
		if e.Outcome == "" {
			e.Outcome = OutcomeVanished
			if lock != nil && lock.ID == e.ID {
				e.Outcome = OutcomeRunning
			}
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// History reads the deploy history from every member that answers, merged,
// oldest first. Nodes that cannot be read are named in the error, which is
// not fatal when entries are returned.
func History(ctx context.Context, inv *inventory.Inventory, conns map[string]transport.Transport) ([]Entry, error) {
	perNode := map[string][]Record{}
	var errs []string
	var lock *Lock
	for _, n := range inv.Members() {
		t := conns[n.Name]
		if t == nil {
			errs = append(errs, n.Name+" is unreachable")
			continue
		}
		out, _, err := t.Run(ctx, "cat "+HistoryFile+" 2>/dev/null || true")
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		recs, err := parseHistory(bytes.NewReader(out))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n.Name, err))
		}
		perNode[n.Name] = recs
		if lock == nil {
			lock, _ = ReadLock(ctx, t)
		}
	}
	entries := mergeHistory(perNode, lock)
	if len(errs) > 0 {
		return entries, fmt.Errorf("history incomplete: %s", strings.Join(errs, "; "))
	}
	return entries, nil
}

// WriteHistory prints the history as a table, newest last.
func WriteHistory(w io.Writer, entries []Entry) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "no deploys recorded yet")
		return
	}
	fmt.Fprintf(w, "%-19s  %-8s  %-14s  %-22s  %-13s  %7s  %-16s  %s\n", "STARTED", "KIND", "VERSION", "FROM", "OUTCOME", "TOOK", "FLOATING IP", "BY")
	for _, e := range entries {
		took := "-"
		if e.Took > 0 {
			took = fmt.Sprintf("%.1fs", e.Took)
		}
		ip := e.IPMoved
		if ip == "" {
			ip = "not moved"
		}
		fmt.Fprintf(w, "%-19s  %-8s  %-14s  %-22s  %-13s  %7s  %-16s  %s@%s\n", e.Started.Local().Format("2006-01-02 15:04:05"),
			e.Kind, e.Version, fromSummary(e.From), e.Outcome, took, ip, e.Holder, e.Host)
		if e.Message != "" && e.Outcome != OutcomeSuccess {
			fmt.Fprintf(w, "    %s\n", e.Message)
		}
	}
}

// fromSummary is "1.4-1" when every node had that version, else
// "node1=1.4-1,node2=1.3-1".
func fromSummary(from map[string]string) string {
	if len(from) == 0 {
		return "-"
	}
	var nodes []string
	vals := map[string]bool{}
	for n, v := range from {
		nodes = append(nodes, n)
		vals[v] = true
	}
	sort.Strings(nodes)
	if len(vals) == 1 {
		v := from[nodes[0]]
		if v == "" {
			return "(none)"
		}
		return v
	}
	var parts []string
	for _, n := range nodes {
		parts = append(parts, n+"="+from[n])
	}
	return strings.Join(parts, ",")
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
