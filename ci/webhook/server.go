// Package webhook is debship's GitLab webhook receiver: GitLab posts
// Pipeline, Release or Job events to it; when a tag pipeline of the
// configured project succeeds (or its release is created), it fetches that
// version's .deb from GitLab and deploys it.
//
// It follows GitLab's rules for receivers
// (https://docs.gitlab.com/user/project/integrations/webhooks/): answer
// within milliseconds and deploy later from a queue (GitLab waits at most
// 10 s and counts timeouts as failures), answer 2xx to everything that is
// not a misconfiguration (GitLab disables hooks that keep failing), and
// expect the same delivery twice (Idempotency-Key). Deploys run one at a
// time from a single worker; a newer version queued behind a running
// deploy replaces the older queued one. The queue and its history live in
// a state file written atomically, so a restart resumes it.
//
// Security: the X-Gitlab-Token is compared in constant time; with a
// signing key, deliveries must carry a valid Standard Webhooks signature
// (webhook-signature) no more than 5 minutes old; the body size is
// limited; secrets never reach a log line, an error or an answer (see
// Secret). A delivery is never taken at its word: before the fetch, the
// worker asks GitLab's API whether the pipeline (or job, or release) it
// names passed and whether the tag points at the commit that ran
// (Verifier), and refuses the job when not.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SignatureTolerance is how far a signed delivery's timestamp may be from
// the receiver's clock, either way: older deliveries are replays.
const SignatureTolerance = 5 * time.Minute

// maxInFlight bounds the deliveries read at once; GitLab sends a few at a
// time, so more is a flood, answered 429 rather than queued in memory.
const maxInFlight = 64

// keepDebs is how many fetched .debs stay in the state directory: the
// nodes keep their own previous version for rollback.
const keepDebs = 3

// Options are what New needs besides the configuration.
type Options struct {
	Deployer Deployer         // required: the rolling deploy, or a CommandDeployer
	Fetcher  Fetcher          // default: a GitLabFetcher for the configuration
	Verifier Verifier         // default: a GitLabVerifier for the configuration
	Log      *slog.Logger     // default: text to stderr
	Now      func() time.Time // default: time.Now (tests move the clock)
	// Target reads the nodes' Debian release before each fetch when the
	// configuration names no [gitlab] target (cluster/ship's
	// ReceiverTarget: this package cannot read the nodes' release the
	// way the deploy does). nil: the release must hold a single .deb.
	Target func(ctx context.Context) (string, error)
}

// Receiver is the HTTP handler, the queue and its worker.
type Receiver struct {
	cfg      *Config
	q        *queue
	deployer Deployer
	fetcher  Fetcher
	verifier Verifier
	target   func(ctx context.Context) (string, error)
	log      *slog.Logger
	now      func() time.Time
	debDir   string
	sem      chan struct{}
	tokenSum [sha256.Size]byte
}

// New opens the queue in the state directory (resuming what a previous
// run left) and returns a receiver ready to Serve.
func New(cfg *Config, o Options) (*Receiver, error) {
	if o.Deployer == nil {
		return nil, errors.New("webhook: no deployer")
	}
	r := &Receiver{cfg: cfg, deployer: o.Deployer, fetcher: o.Fetcher, verifier: o.Verifier, target: o.Target, log: o.Log, now: o.Now,
		sem: make(chan struct{}, maxInFlight), debDir: filepath.Join(cfg.StateDir, "debs")}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.fetcher == nil {
		r.fetcher = &GitLabFetcher{Config: cfg}
	}
	if r.verifier == nil {
		r.verifier = &GitLabVerifier{Config: cfg}
	}
	r.tokenSum = sha256.Sum256(cfg.Token.bytes())
	q, err := openQueue(cfg.StateDir, r.log, r.now)
	if err != nil {
		return nil, err
	}
	r.q = q
	if err := os.MkdirAll(r.debDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	// Half downloads of a killed run.
	if m, _ := filepath.Glob(filepath.Join(r.debDir, ".download-*")); len(m) > 0 {
		for _, f := range m {
			os.Remove(f)
		}
	}
	return r, nil
}

// Status is the queue as GET /status shows it.
func (r *Receiver) Status() Status { return r.q.status(20) }

// Job returns a job by ID, if the state still holds it.
func (r *Receiver) Job(id string) (Job, bool) { return r.q.job(id) }

// Wait returns the status once cond holds for it, or the last status and
// ctx's error; for tests and tools that deliver an event and wait for its
// deploy (e.g. cond: s.Deployed == "1.5" && s.Current == nil).
func (r *Receiver) Wait(ctx context.Context, cond func(Status) bool) (Status, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s := r.Status()
		if cond(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-t.C:
		}
	}
}

// ListenAndServe listens on the configured address and serves until ctx is
// cancelled (SIGTERM), then shuts down gracefully (see Serve).
func (r *Receiver) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (listen in %s): %w", r.cfg.Listen, r.cfg.File, err)
	}
	return r.Serve(ctx, ln)
}

// Serve answers deliveries on ln and runs the deploy worker until ctx is
// cancelled. Then it stops taking deliveries, gives a running deploy the
// shutdown grace period to finish, cancels it after that (the Deployer
// stops safely; the job goes back to the queue for the next start), saves
// the queue and returns.
func (r *Receiver) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           r.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if r.cfg.TLSCert != "" {
		pem, err := os.ReadFile(r.cfg.TLSCert)
		if err != nil {
			ln.Close()
			return fmt.Errorf("TLS certificate (tls.cert in %s): %w", r.cfg.File, err)
		}
		cert, err := tls.X509KeyPair(pem, r.cfg.TLSKey.bytes())
		if err != nil {
			ln.Close()
			return fmt.Errorf("TLS certificate %s and [tls.key] of %s: %v", r.cfg.TLSCert, r.cfg.File, err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	worker := make(chan struct{})
	go func() {
		defer close(worker)
		r.q.run(stop, r.cfg.ShutdownGrace, r.process)
	}()
	st := r.Status()
	r.log.Info("webhook receiver listening", "url", scheme+"://"+ln.Addr().String()+r.cfg.Path,
		"project", r.cfg.APIProject(), "trigger", r.cfg.Trigger, "tags", r.cfg.Tags.String(),
		"signed", r.cfg.SigningKey.IsSet(), "deployed", st.Deployed, "queued", len(st.Queued))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
		r.log.Info("shutting down: no new deliveries")
	case serveErr = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	srv.Shutdown(sctx)
	cancel()
	<-worker
	r.log.Info("webhook receiver stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// Handler routes: POST <path> deliveries, GET /status, GET /healthz.
func (r *Receiver) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		switch req.URL.Path {
		case r.cfg.Path:
			r.hook(w, req)
		case "/status":
			if req.Method != http.MethodGet && req.Method != http.MethodHead {
				h.Set("Allow", "GET, HEAD")
				reply(w, http.StatusMethodNotAllowed, answer{Status: "method not allowed"})
				return
			}
			reply(w, http.StatusOK, r.Status())
		case "/healthz":
			reply(w, http.StatusOK, answer{Status: "ok"})
		default:
			reply(w, http.StatusNotFound, answer{Status: "not found"})
		}
	})
}

// answer is the body of every reply to a delivery: small, because GitLab
// stores it, and never with a header value or a computed signature in it.
type answer struct {
	Status  string `json:"status"`
	Job     string `json:"job,omitempty"`
	Version string `json:"version,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (r *Receiver) hook(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	event := req.Header.Get("X-Gitlab-Event")
	attrs := []any{"event", clip(event), "hook", clip(req.Header.Get("X-Gitlab-Webhook-UUID")), "remote", req.RemoteAddr}
	if f := req.Header.Get("X-Forwarded-For"); f != "" {
		// Behind a reverse proxy the remote is the proxy; what it says
		// about the sender is logged for the audit trail, never trusted.
		attrs = append(attrs, "forwarded_for", clip(f))
	}
	done := func(level slog.Level, code int, a answer, more ...any) {
		reply(w, code, a)
		all := append(attrs, "code", code, "result", a.Status)
		if a.Job != "" {
			all = append(all, "job", a.Job, "version", a.Version)
		}
		if a.Reason != "" {
			all = append(all, "reason", a.Reason)
		}
		all = append(all, more...)
		all = append(all, "ms", float64(time.Since(start).Microseconds())/1000)
		r.log.Log(req.Context(), level, "delivery", all...)
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		done(slog.LevelInfo, http.StatusMethodNotAllowed, answer{Status: "method not allowed"})
		return
	}
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	default:
		w.Header().Set("Retry-After", "1")
		done(slog.LevelWarn, http.StatusTooManyRequests, answer{Status: "too many deliveries at once"})
		return
	}
	// The token first: nobody without it gets the body read.
	got := sha256.Sum256([]byte(req.Header.Get("X-Gitlab-Token")))
	if subtle.ConstantTimeCompare(got[:], r.tokenSum[:]) != 1 {
		done(slog.LevelWarn, http.StatusUnauthorized, answer{Status: "unauthorized"}, "why", "missing or wrong X-Gitlab-Token")
		return
	}
	if req.ContentLength > r.cfg.MaxBody {
		done(slog.LevelWarn, http.StatusRequestEntityTooLarge, answer{Status: "body too large"}, "bytes", req.ContentLength)
		return
	}
	body, err := readBody(w, req, r.cfg.MaxBody)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			done(slog.LevelWarn, http.StatusRequestEntityTooLarge, answer{Status: "body too large"})
			return
		}
		done(slog.LevelWarn, http.StatusBadRequest, answer{Status: "cannot read the body"}, "err", err)
		return
	}
	signed := false
	if r.cfg.SigningKey.IsSet() {
		if why := r.verifySignature(req.Header, body); why != "" {
			done(slog.LevelWarn, http.StatusUnauthorized, answer{Status: "unauthorized"}, "why", why)
			return
		}
		signed = true
	}
	key := deliveryKey(req.Header, body, signed)
	attrs = append(attrs, "delivery", key)

	t, why, err := r.cfg.decide(event, body)
	if err != nil {
		done(slog.LevelWarn, http.StatusBadRequest, answer{Status: "bad payload", Reason: err.Error()})
		return
	}
	if t == nil {
		done(slog.LevelInfo, http.StatusOK, answer{Status: "ignored", Reason: why})
		return
	}
	j := &Job{Tag: t.Tag, Version: t.Version, Event: event, ProjectID: t.ProjectID, ProjectPath: t.ProjectPath,
		SHA: t.SHA, PipelineID: t.PipelineID, CIJob: t.CIJob, Delivery: key}
	out, err := r.q.submit(j)
	if err != nil {
		// Not on disk: a restart would lose it, so GitLab should count it
		// as failed (the admin sees it under the hook's recent events).
		done(slog.LevelError, http.StatusServiceUnavailable, answer{Status: "cannot record the job", Job: out.Job.ID}, "err", err)
		return
	}
	a := answer{Status: out.Status, Job: out.Job.ID, Version: out.Job.Version, Reason: out.Job.Note}
	if out.Status == "queued" {
		done(slog.LevelInfo, http.StatusAccepted, a)
		return
	}
	done(slog.LevelInfo, http.StatusOK, a)
}

// readBody reads a delivery's body of at most limit bytes, in one buffer
// of its Content-Length when it has one: io.ReadAll's growing buffer was
// almost half the bytes an ignored delivery allocated.
func readBody(w http.ResponseWriter, req *http.Request, limit int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, req.Body, limit)
	if n := req.ContentLength; n > 0 && n <= limit {
		// net/http ends the body at its Content-Length: a shorter one
		// is io.ErrUnexpectedEOF, a longer one is never read.
		b := make([]byte, n)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(rd)
}

// verifySignature checks a Standard Webhooks signature: HMAC-SHA256 with
// the signing key over "<webhook-id>.<webhook-timestamp>.<body>", sent as
// one or more space-separated "v1,<base64>". It returns why a delivery is
// refused, or "". The reasons never contain the expected value.
func (r *Receiver) verifySignature(h http.Header, body []byte) string {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return "unsigned delivery: webhook-id, webhook-timestamp or webhook-signature missing, but a signing key is configured"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "webhook-timestamp is not a Unix time"
	}
	age := r.now().Sub(time.Unix(sec, 0))
	if age > SignatureTolerance {
		return fmt.Sprintf("signature timestamp is %s old (more than %s: a replay, or the clocks differ)", age.Round(time.Second), SignatureTolerance)
	}
	if age < -SignatureTolerance {
		return fmt.Sprintf("signature timestamp is %s in the future (more than %s: check the clocks)", (-age).Round(time.Second), SignatureTolerance)
	}
	m := hmac.New(sha256.New, r.cfg.SigningKey.bytes())
	io.WriteString(m, id+"."+ts+".")
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		ver, b64, ok := strings.Cut(s, ",")
		if !ok || ver != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return ""
		}
	}
	return "webhook-signature does not match (wrong signing key, or the body was changed)"
}

// deliveryKey is what duplicates are recognised by: the signed webhook-id
// when signatures are checked (an unsigned header could be changed by a
// replayer), else Idempotency-Key (GitLab 17.4+, the same across retries),
// else X-Gitlab-Event-UUID, else the body's hash.
func deliveryKey(h http.Header, body []byte, signed bool) string {
	var k string
	switch {
	case signed:
		k = "webhook-id:" + h.Get("webhook-id")
	case h.Get("Idempotency-Key") != "":
		k = "idempotency-key:" + h.Get("Idempotency-Key")
	case h.Get("X-Gitlab-Event-UUID") != "":
		k = "event-uuid:" + h.Get("X-Gitlab-Event-UUID")
	default:
		s := sha256.Sum256(body)
		return "body-sha256:" + hex.EncodeToString(s[:])
	}
	if len(k) > 128 || clip(k) != k {
		s := sha256.Sum256([]byte(k))
		return "key-sha256:" + hex.EncodeToString(s[:])
	}
	return k
}

// process runs one job: confirm it with GitLab, fetch, then deploy.
func (r *Receiver) process(ctx context.Context, j Job, step func(func(*Job))) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DeployTimeout)
	defer cancel()
	step(func(j *Job) { j.Step = "verify" })
	sha, err := r.verifier.Verify(ctx, j)
	if err != nil {
		return err
	}
	j.SHA = sha
	step(func(x *Job) { x.Step, x.SHA = "fetch", sha })
	// Read for each job: nodes upgraded to a new Debian release get its
	// .deb without a restart of the receiver.
	j.Target = r.cfg.Target
	if j.Target == "" && r.target != nil {
		t, err := r.target(ctx)
		if err != nil {
			return fmt.Errorf("which .deb of %s to fetch: %w", j.Tag, err)
		}
		j.Target = t
	}
	step(func(x *Job) { x.Target = j.Target })
	a, err := r.fetcher.Fetch(ctx, j, r.debDir)
	if err != nil {
		return fmt.Errorf("fetch the .deb of %s: %w", j.Tag, err)
	}
	j.Deb, j.DebSHA256 = filepath.Base(a.Path), a.SHA256
	step(func(x *Job) { x.Step, x.Deb, x.DebSHA256 = "deploy", j.Deb, j.DebSHA256 })
	r.log.Info("fetched", "job", j.ID, "deb", j.Deb, "target", j.Target, "sha256", a.SHA256, "source", a.Source)
	if err := r.deployer.Deploy(ctx, j, a.Path); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("deploy of %s timed out after %s: %w", j.Version, r.cfg.DeployTimeout, err)
		}
		return fmt.Errorf("deploy of %s: %w", j.Version, err)
	}
	r.pruneDebs()
	return nil
}

// pruneDebs keeps the newest fetched .debs only.
func (r *Receiver) pruneDebs() {
	m, _ := filepath.Glob(filepath.Join(r.debDir, "*.deb"))
	type f struct {
		p string
		t time.Time
	}
	var fs []f
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil {
			fs = append(fs, f{p, fi.ModTime()})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].t.After(fs[j].t) })
	for i := keepDebs; i < len(fs); i++ {
		os.Remove(fs[i].p)
	}
}
