package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
	"gitlab.com/debship/debship/ci/webhook/webhooktest"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/syncbuf"
)

// The secrets of the tests. Every test's logs, answers and state file are
// searched for them at its end (env.checkNoSecrets).
const (
	testToken   = "wh-token-Zq81xVt3LmP0aa5e"
	readToken   = "glpat-read-Yk39bQw7TnR2cc8d"
	projectID   = 42
	projectPath = "acme/hello-web"
	pkgName     = "hello-web"
)

// baseConfig is a valid webhook.toml for the tests; {{GITLAB}} is the fake
// GitLab's URL. The deploy command is only there to make the file valid
// without an inventory: the tests hand their own Deployer to New. Without
// an inventory the nodes' release is named (target).
const baseConfig = `# test receiver
listen = "127.0.0.1:0"
state-dir = "state"
shutdown-grace = "2s"

` + webhooktest.Config + `package = "hello-web"
target = "debian-13"

[gitlab.token]
env = "TEST_WEBHOOK_GITLAB_TOKEN"

[deploy]
command = ["/bin/true"]
`

// writeConfig writes a webhook.toml (mode 0600) and its token file into
// dir and loads it.
func writeConfig(t testing.TB, dir, text string) (*Config, error) {
	t.Helper()
	t.Setenv("TEST_WEBHOOK_GITLAB_TOKEN", readToken)
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "webhook.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

// fakeDeployer records deploys and checks that they never overlap.
type fakeDeployer struct {
	mu       sync.Mutex
	deployed []string // versions, in order
	debs     []string
	running  atomic.Int32
	maxSeen  atomic.Int32
	delay    time.Duration
	block    chan struct{} // when set, a deploy waits for it (or ctx)
	started  chan string   // when set, receives each version as it starts
	fail     map[string]error
}

func (d *fakeDeployer) Deploy(ctx context.Context, job Job, debPath string) error {
	n := d.running.Add(1)
	defer d.running.Add(-1)
	for {
		m := d.maxSeen.Load()
		if n <= m || d.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if d.started != nil {
		d.started <- job.Version
	}
	if _, err := os.Stat(debPath); err != nil {
		return fmt.Errorf("the .deb to deploy is missing: %w", err)
	}
	if d.block != nil {
		select {
		case <-d.block:
		case <-ctx.Done():
			return fmt.Errorf("abandoned: %w", ctx.Err())
		}
	}
	select {
	case <-time.After(d.delay):
	case <-ctx.Done():
		return fmt.Errorf("abandoned: %w", ctx.Err())
	}
	if err := d.fail[job.Version]; err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deployed = append(d.deployed, job.Version)
	d.debs = append(d.debs, filepath.Base(debPath))
	return nil
}

func (d *fakeDeployer) versions() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.deployed...)
}

// env is a receiver on loopback with a fake GitLab behind it.
type env struct {
	t         *testing.T
	dir       string
	cfg       *Config
	gl        *gitlabtest.Server
	logs      *syncbuf.Buffer
	answers   syncbuf.Buffer // every answer body the tests received
	sent      []string       // header values that must never come back (signatures)
	sentMu    sync.Mutex
	dep       *fakeDeployer
	deployer  Deployer                              // instead of dep when set
	target    func(context.Context) (string, error) // Options.Target
	rec       *Receiver
	url       string
	hook      *gitlabtest.Hook
	now       func() time.Time
	stop      context.CancelFunc
	done      chan error
	extraText []string // secrets of a test to search for as well
}

// newEnv makes the config (edit changes its text), the fake GitLab and
// the state directory, without starting the receiver.
func newEnv(t *testing.T, edit func(string) string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), gl: gitlabtest.New(), logs: &syncbuf.Buffer{}, dep: &fakeDeployer{}}
	t.Cleanup(e.gl.Close)
	e.gl.AddProject(projectID, projectPath)
	e.gl.AddToken(readToken, gitlabtest.Reporter)
	text := strings.ReplaceAll(baseConfig, "{{GITLAB}}", e.gl.URL)
	if edit != nil {
		text = edit(text)
	}
	cfg, err := writeConfig(t, e.dir, text)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	t.Cleanup(e.checkNoSecrets)
	return e
}

// green records in the fake GitLab what it holds once the pipeline of tag
// has passed: the tag at the pipeline's commit, the pipeline (success) and
// its job "release" (success), with the IDs and commit the deliveries of
// webhooktest name (TagRun). The receiver asks for them before it deploys.
func (e *env) green(tag string) {
	r := webhooktest.TagRun(tag)
	e.gl.AddPipeline(projectID, gitlabtest.Pipeline{ID: r.Pipeline, Ref: tag, Tag: true, SHA: r.SHA, Status: "success"},
		gitlabtest.CIJob{ID: r.Job, Name: "release", Stage: "release", Status: "success"})
}

// release publishes the .debs of each version (e.g. "1.4.0") in the fake
// registry, one per Debian release, and creates the release of tag
// v<version>, as `debship release` does at the end of a green pipeline.
func (e *env) release(versions ...string) {
	e.t.Helper()
	for _, v := range versions {
		e.green("v" + v)
		e.gl.AddRelease(projectID, "v"+v)
		for _, p := range makeTargetDebs(e.t, v) {
			b, err := os.ReadFile(p)
			if err != nil {
				e.t.Fatal(err)
			}
			e.gl.AddPackageFile(projectID, pkgName, v, filepath.Base(p), b)
		}
	}
}

// makeTargetDebs writes the .deb of version for each Debian release
// debship builds for (hello-web_1.4.0-1+deb13u1_all.deb …), keyed by
// target.
func makeTargetDebs(t *testing.T, version string) map[string]string {
	t.Helper()
	debs := map[string]string{}
	dir := t.TempDir()
	for _, r := range debian.Releases {
		debs[r.Target] = makeDeb(t, dir, pkgName, version, fmt.Sprintf("1+deb%du1", r.Version))
	}
	return debs
}

// start runs the receiver (a new one on the same state directory each
// time) on a loopback port.
func (e *env) start() {
	e.t.Helper()
	var d Deployer = e.dep
	if e.deployer != nil {
		d = e.deployer
	}
	rec, err := New(e.cfg, Options{
		Deployer: d,
		Fetcher:  &GitLabFetcher{Config: e.cfg, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond},
		Verifier: &GitLabVerifier{Config: e.cfg, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond},
		Log:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      e.now,
		Target:   e.target,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.rec, e.stop, e.done = rec, cancel, make(chan error, 1)
	e.url = "http://" + ln.Addr().String()
	e.hook = &gitlabtest.Hook{URL: e.url + e.cfg.Path, Token: testToken}
	go func() { e.done <- rec.Serve(ctx, ln) }()
	e.t.Cleanup(func() { e.shutdown() })
}

// shutdown stops the receiver as SIGTERM does and waits for it.
func (e *env) shutdown() {
	if e.stop == nil {
		return
	}
	e.stop()
	if err := <-e.done; err != nil {
		e.t.Errorf("Serve: %v", err)
	}
	e.stop = nil
}

// send delivers an event and returns the status code and the answer.
func (e *env) send(event string, body []byte, key string) (int, answer) {
	e.t.Helper()
	return e.sendWith(e.hook, gitlabtest.Delivery{Event: event, Body: body, IdempotencyKey: key})
}

func (e *env) sendWith(h *gitlabtest.Hook, d gitlabtest.Delivery) (int, answer) {
	e.t.Helper()
	req, err := h.Request(context.Background(), d)
	if err != nil {
		e.t.Fatal(err)
	}
	if s := req.Header.Get("webhook-signature"); s != "" {
		e.sentMu.Lock()
		e.sent = append(e.sent, strings.TrimPrefix(s, "v1,"))
		e.sentMu.Unlock()
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, answer) {
	e.t.Helper()
	code, body := e.fetch(req)
	var a answer
	json.Unmarshal(body, &a)
	return code, a
}

// fetch sends req and keeps the answer's body among the answers searched
// for secrets.
func (e *env) fetch(req *http.Request) (int, []byte) {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	e.answers.Write(body)
	return resp.StatusCode, body
}

// status reads GET /status over HTTP, as a user would.
func (e *env) status() Status {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+"/status", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	_, body := e.fetch(req)
	var s Status
	if err := json.Unmarshal(body, &s); err != nil {
		e.t.Fatalf("/status: %v: %s", err, body)
	}
	return s
}

// waitFor polls the queue until cond holds.
func (e *env) waitFor(what string, cond func(Status) bool) Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := e.rec.Wait(ctx, cond)
	if err != nil {
		b, _ := json.MarshalIndent(s, "", "  ")
		e.t.Fatalf("timed out waiting for %s; status:\n%s\nlogs:\n%s", what, b, e.logs.String())
	}
	return s
}

// idle is: nothing running, nothing queued.
func idle(s Status) bool { return s.Current == nil && len(s.Queued) == 0 }

// checkNoSecrets fails the test if a secret or a signature it sent shows
// up in a log line, an answer, /status or the state file.
func (e *env) checkNoSecrets() {
	state, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, "state.json"))
	texts := map[string]string{"logs": e.logs.String(), "answers": e.answers.String(), "state file": string(state)}
	secrets := append([]string{testToken, readToken}, e.extraText...)
	e.sentMu.Lock()
	secrets = append(secrets, e.sent...)
	e.sentMu.Unlock()
	for where, text := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				e.t.Errorf("a secret or signature (%.6s…) appears in the %s", s, where)
			}
		}
	}
}

// makeDeb writes a small real .deb of package name at version-revision.
func makeDeb(t *testing.T, dir, name, version, revision string) string {
	t.Helper()
	return gitlabtest.MakeDeb(t, dir, name, version, revision, name+" "+version)
}

// fixture is webhooktest.Event, failing the test on an error.
func fixture(t *testing.T, name string, set map[string]any) []byte {
	t.Helper()
	b, err := webhooktest.Event(name, set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pipeline is a successful tag pipeline of project 42 for tag.
func pipeline(t *testing.T, tag string) []byte {
	return webhooktest.Pipeline(projectID, projectPath, tag)
}

var errDeploy = errors.New("health check failed on node b")

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
