package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"gitlab.com/debship/debship/debbuild/debversion"
)

// State of a job.
type State string

const (
	StateQueued     State = "queued"
	StateRunning    State = "running"
	StateSucceeded  State = "succeeded"
	StateFailed     State = "failed"
	StateSuperseded State = "superseded" // a newer version was queued before it started
	StateSkipped    State = "skipped"    // not newer than what is deployed or deploying
	// GitLab did not confirm what the delivery claimed (the pipeline's
	// status, the tag's commit …): nothing was fetched or deployed.
	StateRefused State = "refused"
)

// Job is one deploy asked for by a delivery. It holds nothing secret: it
// is written to the state file and shown by GET /status.
type Job struct {
	ID          string    `json:"id"`
	State       State     `json:"state"`
	Step        string    `json:"step,omitempty"` // while running: "verify", "fetch" or "deploy"
	Tag         string    `json:"tag"`
	Version     string    `json:"version"` // the tag as a Debian upstream version
	Event       string    `json:"event"`   // X-Gitlab-Event of the delivery
	ProjectID   int64     `json:"project_id,omitempty"`
	ProjectPath string    `json:"project_path,omitempty"`
	SHA         string    `json:"sha,omitempty"` // as the delivery names it; once verified, as GitLab confirmed it
	PipelineID  int64     `json:"pipeline_id,omitempty"`
	CIJob       int64     `json:"ci_job_id,omitempty"` // the CI job of a Job Hook
	Delivery    string    `json:"delivery"`            // the key duplicates are recognised by
	Received    time.Time `json:"received"`
	Started     time.Time `json:"started,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
	Attempts    int       `json:"attempts,omitempty"`
	Target      string    `json:"target,omitempty"` // the nodes' Debian release the .deb is fetched for
	Deb         string    `json:"deb,omitempty"`    // file name of the fetched .deb
	DebSHA256   string    `json:"deb_sha256,omitempty"`
	Error       string    `json:"error,omitempty"`
	Note        string    `json:"note,omitempty"` // why superseded, skipped or resumed
}

// Bounds of what the state file keeps.
const (
	maxHistory  = 100
	maxSeen     = 1000
	maxAttempts = 3 // starts of one job before a crash loop is given up
	stateFormat = 1
)

// stateFile is the queue as persisted in <state-dir>/state.json.
type stateFile struct {
	Format      int    `json:"format"`
	NextID      int64  `json:"next_id"`
	Deployed    string `json:"deployed,omitempty"` // version of the last successful deploy
	DeployedJob string `json:"deployed_job,omitempty"`
	Current     *Job   `json:"current,omitempty"`
	Queue       []*Job `json:"queue"`
	History     []*Job `json:"history"` // finished jobs, oldest first
	Seen        []seen `json:"seen"`    // delivery keys, oldest first
}

type seen struct {
	Key string `json:"key"`
	Job string `json:"job"`
}

// queue is the single-worker deploy queue. Every change is written to the
// state file (temp file, fsync, rename) before it is acknowledged, so a
// job answered 202 survives a crash of the receiver.
type queue struct {
	mu   sync.Mutex
	path string
	st   stateFile
	keys map[string]string // delivery key → job ID
	wake chan struct{}
	log  *slog.Logger
	now  func() time.Time
}

func openQueue(dir string, log *slog.Logger, now func() time.Time) (*queue, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	q := &queue{path: filepath.Join(dir, "state.json"), keys: map[string]string{}, wake: make(chan struct{}, 1), log: log, now: now}
	q.st.Format = stateFormat
	data, err := os.ReadFile(q.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read the queue: %w", err)
	default:
		if err := json.Unmarshal(data, &q.st); err != nil {
			return nil, fmt.Errorf("the queue file %s is damaged (%v); move it away to start with an empty queue and history", q.path, err)
		}
		if q.st.Format != stateFormat {
			return nil, fmt.Errorf("the queue file %s has format %d, this debship knows %d; move it away or use the debship that wrote it", q.path, q.st.Format, stateFormat)
		}
	}
	for _, s := range q.st.Seen {
		q.keys[s.Key] = s.Job
	}
	if j := q.st.Current; j != nil {
		// The receiver stopped (crash, kill, reboot) while this job ran.
		q.st.Current = nil
		if j.Attempts >= maxAttempts {
			q.finishLocked(j, StateFailed, fmt.Sprintf("the receiver stopped during step %q %d times; deploy by hand, or send the event again", j.Step, j.Attempts), "")
			log.Warn("interrupted deploy given up", "job", j.ID, "version", j.Version, "attempts", j.Attempts)
		} else {
			j.State, j.Note = StateQueued, fmt.Sprintf("resumed: the receiver stopped during step %q", j.Step)
			j.Step = ""
			q.requeueLocked(j)
			log.Info("interrupted deploy queued again", "job", j.ID, "version", j.Version)
		}
	}
	if err := q.saveLocked(); err != nil {
		return nil, err
	}
	if len(q.st.Queue) > 0 {
		q.signal()
	}
	return q, nil
}

// Outcome is what happened to a delivery that asked for a deploy.
type Outcome struct {
	Status string // "queued", "duplicate", "superseded" or "skipped"
	Job    Job
}

// submit queues a deploy unless the delivery was seen before or the
// version is not newer than what is deployed, running or queued. A newer
// version supersedes the queued ones: the queue holds at most one job.
func (q *queue) submit(j *Job) (Outcome, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if id, ok := q.keys[j.Delivery]; ok {
		out := Outcome{Status: "duplicate", Job: Job{ID: id}}
		if old := q.findLocked(id); old != nil {
			out.Job = *old
		}
		return out, nil
	}
	q.st.NextID++
	j.ID = strconv.FormatInt(q.st.NextID, 10)
	j.State, j.Received = StateQueued, q.now().UTC()
	q.rememberLocked(j.Delivery, j.ID)

	status := "queued"
	switch cur := q.st.Current; {
	case q.st.Deployed != "" && debversion.CompareDebianVersions(j.Version, q.st.Deployed) <= 0:
		status = "skipped"
		q.finishLocked(j, StateSkipped, "", fmt.Sprintf("version %s is not newer than the deployed %s (job %s)", j.Version, q.st.Deployed, q.st.DeployedJob))
	case cur != nil && debversion.CompareDebianVersions(j.Version, cur.Version) <= 0:
		status = "skipped"
		q.finishLocked(j, StateSkipped, "", fmt.Sprintf("version %s is not newer than %s, which job %s is deploying", j.Version, cur.Version, cur.ID))
	default:
		if !q.requeueLocked(j) {
			status = "superseded"
		}
	}
	out := Outcome{Status: status, Job: *j}
	if err := q.saveLocked(); err != nil {
		return out, err
	}
	if status == "queued" {
		q.signal()
	}
	return out, nil
}

// requeueLocked puts j at the head of the queue, superseding the queued
// jobs of older versions, or supersedes j if a job of the same or a newer
// version is queued already. It reports whether j is queued.
func (q *queue) requeueLocked(j *Job) bool {
	for _, o := range q.st.Queue {
		if debversion.CompareDebianVersions(o.Version, j.Version) >= 0 {
			q.finishLocked(j, StateSuperseded, "", fmt.Sprintf("job %s of version %s was queued already", o.ID, o.Version))
			return false
		}
	}
	for _, o := range q.st.Queue {
		q.finishLocked(o, StateSuperseded, "", fmt.Sprintf("superseded by job %s of the newer version %s", j.ID, j.Version))
	}
	q.st.Queue = []*Job{j}
	return true
}

// finishLocked records a job that will not run (again) in the history.
func (q *queue) finishLocked(j *Job, s State, errMsg, note string) {
	j.State, j.Step, j.Finished = s, "", q.now().UTC()
	if errMsg != "" {
		j.Error = errMsg
	}
	if note != "" {
		j.Note = note
	}
	q.st.History = append(q.st.History, j)
	if n := len(q.st.History) - maxHistory; n > 0 {
		q.st.History = append([]*Job(nil), q.st.History[n:]...)
	}
}

func (q *queue) rememberLocked(key, id string) {
	q.keys[key] = id
	q.st.Seen = append(q.st.Seen, seen{Key: key, Job: id})
	if n := len(q.st.Seen) - maxSeen; n > 0 {
		for _, s := range q.st.Seen[:n] {
			if q.keys[s.Key] == s.Job {
				delete(q.keys, s.Key)
			}
		}
		q.st.Seen = append([]seen(nil), q.st.Seen[n:]...)
	}
}

func (q *queue) findLocked(id string) *Job {
	if q.st.Current != nil && q.st.Current.ID == id {
		return q.st.Current
	}
	for _, j := range q.st.Queue {
		if j.ID == id {
			return j
		}
	}
	for i := len(q.st.History) - 1; i >= 0; i-- {
		if q.st.History[i].ID == id {
			return q.st.History[i]
		}
	}
	return nil
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next takes the head of the queue and makes it the running job.
func (q *queue) next() *Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.st.Queue) == 0 {
		return nil
	}
	j := q.st.Queue[0]
	q.st.Queue = q.st.Queue[1:]
	j.State, j.Started, j.Finished = StateRunning, q.now().UTC(), time.Time{}
	j.Attempts++
	q.st.Current = j
	q.saveOrLog()
	return j
}

// update changes the running job (its step, the fetched file).
func (q *queue) update(id string, f func(*Job)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if j := q.st.Current; j != nil && j.ID == id {
		f(j)
		q.saveOrLog()
	}
}

// done records the end of the running job. An interrupted job (shutdown
// cancelled it) goes back to the head of the queue for the next start.
func (q *queue) done(j *Job, err error, interrupted bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.st.Current = nil
	var refused *Refusal
	switch {
	case err == nil:
		q.st.Deployed, q.st.DeployedJob = j.Version, j.ID
		q.finishLocked(j, StateSucceeded, "", "")
	case errors.As(err, &refused):
		q.finishLocked(j, StateRefused, refused.Reason, "")
	case interrupted && j.Attempts < maxAttempts:
		j.State, j.Note = StateQueued, fmt.Sprintf("interrupted by a shutdown during step %q: %v; resumes at the next start", j.Step, err)
		j.Step = ""
		q.requeueLocked(j)
	default:
		msg := err.Error()
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		q.finishLocked(j, StateFailed, msg, "")
	}
	q.saveOrLog()
}

func (q *queue) saveOrLog() {
	if err := q.saveLocked(); err != nil {
		q.log.Error("cannot save the queue", "err", err)
	}
}

// saveLocked writes the state atomically: a crash leaves the old or the
// new file, never half of one.
func (q *queue) saveLocked() error {
	data, err := json.MarshalIndent(&q.st, "", "  ")
	if err != nil {
		return fmt.Errorf("save the queue: %w", err)
	}
	dir := filepath.Dir(q.path)
	tmp, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("save the queue: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), q.path)
	}
	if err != nil {
		return fmt.Errorf("save the queue: %w", err)
	}
	// The rename itself must reach the disk too.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Status is what GET /status shows: nothing secret.
type Status struct {
	Current  *Job   `json:"current"`
	Queued   []Job  `json:"queued"`
	Deployed string `json:"deployed,omitempty"` // version of the last successful deploy
	// Recent are the last finished jobs, newest first.
	Recent []Job `json:"recent"`
}

func (q *queue) status(n int) Status {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Status{Deployed: q.st.Deployed, Queued: []Job{}, Recent: []Job{}}
	if q.st.Current != nil {
		c := *q.st.Current
		s.Current = &c
	}
	for _, j := range q.st.Queue {
		s.Queued = append(s.Queued, *j)
	}
	for i := len(q.st.History) - 1; i >= 0 && len(s.Recent) < n; i-- {
		s.Recent = append(s.Recent, *q.st.History[i])
	}
	return s
}

func (q *queue) job(id string) (Job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if j := q.findLocked(id); j != nil {
		return *j, true
	}
	return Job{}, false
}

// processFunc runs one job: fetch and deploy. step reports progress.
type processFunc func(ctx context.Context, j Job, step func(func(*Job))) error

// run is the single worker: one job at a time, until stop is cancelled.
// On stop a running job gets grace to finish; then its context is
// cancelled, and the Deployer must stop safely (finish or roll back the
// node in progress) and return.
func (q *queue) run(stop context.Context, grace time.Duration, process processFunc) {
	for {
		if stop.Err() != nil {
			return
		}
		j := q.next()
		if j == nil {
			select {
			case <-stop.Done():
				return
			case <-q.wake:
				continue
			}
		}
		q.log.Info("deploy started", "job", j.ID, "version", j.Version, "tag", j.Tag, "attempt", j.Attempts)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		snapshot := *j
		go func() {
			done <- process(ctx, snapshot, func(f func(*Job)) { q.update(j.ID, f) })
		}()
		var err error
		interrupted := false
		select {
		case err = <-done:
		case <-stop.Done():
			q.log.Info("shutting down: waiting for the running deploy", "job", j.ID, "grace", grace.String())
			t := time.NewTimer(grace)
			select {
			case err = <-done:
			case <-t.C:
				q.log.Warn("shutting down: grace period over, abandoning the running deploy", "job", j.ID)
				cancel()
				err = <-done
				interrupted = err != nil
			}
			t.Stop()
		}
		cancel()
		// The journal has the outcome before /status shows it: whoever
		// reads the status and then the journal finds the line.
		var refused *Refusal
		switch {
		case errors.As(err, &refused):
			q.log.Warn("deploy refused", "job", j.ID, "version", j.Version, "why", refused.Reason)
		case interrupted:
			q.log.Warn("deploy interrupted by the shutdown; see /status for whether it resumes", "job", j.ID, "version", j.Version, "attempt", j.Attempts, "err", err)
		case err != nil:
			q.log.Error("deploy failed", "job", j.ID, "version", j.Version, "err", err)
		default:
			q.log.Info("deploy succeeded", "job", j.ID, "version", j.Version)
		}
		q.done(j, err, interrupted)
	}
}
