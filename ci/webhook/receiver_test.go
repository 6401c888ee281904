package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
	"gitlab.com/debship/debship/ci/webhook/webhooktest"
)

func TestPipelineDeploys(t *testing.T) {
	e := newEnv(t, nil)
	e.release("1.4.0")
	e.start()
	code, a := e.send(EventPipeline, pipeline(t, "v1.4.0"), "")
	if code != http.StatusAccepted || a.Status != "queued" || a.Job == "" || a.Version != "1.4" {
		t.Fatalf("answer %d %+v", code, a)
	}
	s := e.waitFor("the deploy", func(s Status) bool { return idle(s) && s.Deployed != "" })
	if got := e.dep.versions(); len(got) != 1 || got[0] != "1.4" {
		t.Errorf("deployed %v", got)
	}
	j := s.Recent[0]
	if j.State != StateSucceeded || j.Deb != "hello-web_1.4.0-1+deb13u1_all.deb" || j.Target != "debian-13" || len(j.DebSHA256) != 64 || j.Tag != "v1.4.0" || j.PipelineID != 3101 || j.ProjectID != 42 {
		t.Errorf("job %+v", j)
	}
	// /status over HTTP shows the same, without secrets (checked at the end).
	if hs := e.status(); hs.Deployed != "1.4" || len(hs.Recent) != 1 {
		t.Errorf("/status %+v", hs)
	}
}

func TestReleaseAndJobTriggers(t *testing.T) {
	t.Run("release", func(t *testing.T) {
		e := newEnv(t, func(s string) string {
			return strings.Replace(s, `event = "pipeline"`, `event = "release"`, 1)
		})
		e.release("1.4.0")
		e.start()
		if code, a := e.send(EventPipeline, pipeline(t, "v1.4.0"), ""); code != 200 || a.Status != "ignored" {
			t.Errorf("pipeline to a release receiver: %d %+v", code, a)
		}
		if code, a := e.send(EventRelease, fixture(t, "release", map[string]any{"action": "update"}), ""); code != 200 || a.Status != "ignored" {
			t.Errorf("release update: %d %+v", code, a)
		}
		if code, a := e.send(EventRelease, fixture(t, "release", nil), ""); code != 202 {
			t.Fatalf("release create: %d %+v", code, a)
		}
		e.waitFor("the deploy", func(s Status) bool { return s.Deployed == "1.4" })
	})
	t.Run("job", func(t *testing.T) {
		e := newEnv(t, func(s string) string {
			return strings.Replace(s, `event = "pipeline"`, "event = \"job\"\njob = \"release\"", 1)
		})
		e.release("1.4.0")
		e.start()
		if code, a := e.send(EventJob, fixture(t, "job", map[string]any{"build_name": "build"}), ""); code != 200 || a.Status != "ignored" {
			t.Errorf("another job: %d %+v", code, a)
		}
		if code, a := e.send(EventJob, fixture(t, "job", map[string]any{"build_status": "running"}), ""); code != 200 || a.Status != "ignored" {
			t.Errorf("running job: %d %+v", code, a)
		}
		if code, a := e.send(EventJob, fixture(t, "job", nil), ""); code != 202 {
			t.Fatalf("release job success: %d %+v", code, a)
		}
		e.waitFor("the deploy", func(s Status) bool { return s.Deployed == "1.4" })
	})
}

func TestWrongTokenNothingQueued(t *testing.T) {
	e := newEnv(t, nil)
	e.release("1.4.0")
	e.start()
	for _, tok := range []string{"", "wrong", testToken + "x", testToken[:len(testToken)-1], strings.ToUpper(testToken)} {
		h := *e.hook
		h.Token = tok
		code, a := e.sendWith(&h, gitlabtest.Delivery{Event: EventPipeline, Body: pipeline(t, "v1.4.0")})
		if code != http.StatusUnauthorized || a.Status != "unauthorized" {
			t.Errorf("token %q: %d %+v", tok, code, a)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if s := e.rec.Status(); s.Current != nil || len(s.Queued) != 0 || len(s.Recent) != 0 {
		t.Errorf("something was queued: %+v", s)
	}
	if strings.Count(e.logs.String(), "missing or wrong X-Gitlab-Token") != 5 {
		t.Errorf("rejections not logged:\n%s", e.logs.String())
	}
}

func TestSignedDeliveries(t *testing.T) {
	key := gitlabtest.NewSigningToken()
	now := time.Date(2026, 3, 2, 10, 20, 0, 0, time.UTC)
	e := newEnv(t, func(s string) string {
		return s + "\n[signing-key]\nvalue = \"" + key + "\"\n"
	})
	e.extraText = []string{key, strings.TrimPrefix(key, "whsec_")}
	e.now = func() time.Time { return now }
	e.release("1.4.0", "1.5.0")
	e.start()
	signed := *e.hook
	signed.SigningToken = key

	cases := []struct {
		name string
		hook *gitlabtest.Hook
		ts   time.Time
		edit func(*http.Request)
		want int
	}{
		{"unsigned", e.hook, now, nil, 401},
		{"other key", &gitlabtest.Hook{URL: e.hook.URL, Token: testToken, SigningToken: gitlabtest.NewSigningToken()}, now, nil, 401},
		{"stale by 6 minutes", &signed, now.Add(-6 * time.Minute), nil, 401},
		{"6 minutes in the future", &signed, now.Add(6 * time.Minute), nil, 401},
		{"body changed", &signed, now, func(r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			b = bytes.Replace(b, []byte("v1.4.0"), []byte("v1.5.0"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}, 401},
		{"id changed", &signed, now, func(r *http.Request) { r.Header.Set("webhook-id", gitlabtest.NewUUID()) }, 401},
		{"garbage signature", &signed, now, func(r *http.Request) { r.Header.Set("webhook-signature", "v1,!!!") }, 401},
		{"right key, wrong token", &gitlabtest.Hook{URL: e.hook.URL, Token: "nope", SigningToken: key}, now, nil, 401},
		{"4 minutes old, one of two signatures valid", &signed, now.Add(-4 * time.Minute), func(r *http.Request) {
			r.Header.Set("webhook-signature", "v1,AAAA "+r.Header.Get("webhook-signature"))
		}, 202},
	}
	for _, c := range cases {
		req, err := c.hook.Request(context.Background(), gitlabtest.Delivery{Event: EventPipeline, Body: pipeline(t, "v1.4.0"), Timestamp: c.ts})
		if err != nil {
			t.Fatal(err)
		}
		if s := req.Header.Get("webhook-signature"); s != "" {
			e.sent = append(e.sent, strings.TrimPrefix(s, "v1,"))
		}
		if c.edit != nil {
			c.edit(req)
		}
		if code, a := e.do(req); code != c.want {
			t.Errorf("%s: %d %+v, want %d", c.name, code, a, c.want)
		}
	}
	e.waitFor("the deploy", func(s Status) bool { return s.Deployed == "1.4" })
	if n := len(e.dep.versions()); n != 1 {
		t.Errorf("%d deploys, want 1", n)
	}
	// A replay of a valid delivery within the window is a duplicate: the
	// key is the signed webhook-id, whatever Idempotency-Key says.
	req, _ := signed.Request(context.Background(), gitlabtest.Delivery{Event: EventPipeline, Body: pipeline(t, "v1.5.0"), Timestamp: now})
	e.sent = append(e.sent, strings.TrimPrefix(req.Header.Get("webhook-signature"), "v1,"))
	replay := req.Clone(context.Background())
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	replay.Body = io.NopCloser(bytes.NewReader(body))
	replay.Header.Set("Idempotency-Key", gitlabtest.NewUUID())
	if code, a := e.do(req); code != 202 {
		t.Fatalf("1.5.0: %d %+v", code, a)
	}
	if code, a := e.do(replay); code != 200 || a.Status != "duplicate" {
		t.Errorf("replay: %d %+v", code, a)
	}
	e.waitFor("1.5", func(s Status) bool { return s.Deployed == "1.5" })
}

func TestIgnoredDeliveries(t *testing.T) {
	e := newEnv(t, nil)
	e.release("1.4.0")
	e.start()
	cases := []struct {
		name, event string
		body        []byte
		want        int
	}{
		{"other project id", EventPipeline, fixture(t, "pipeline", map[string]any{"project.id": 43}), 200},
		{"other project path", EventPipeline, fixture(t, "pipeline", map[string]any{"project.path_with_namespace": "evil/hello-web"}), 200},
		{"branch pipeline", EventPipeline, fixture(t, "pipeline", map[string]any{"object_attributes.ref": "main", "object_attributes.tag": false}), 200},
		{"failed pipeline", EventPipeline, fixture(t, "pipeline", map[string]any{"object_attributes.status": "failed"}), 200},
		{"running pipeline", EventPipeline, fixture(t, "pipeline", map[string]any{"object_attributes.status": "running"}), 200},
		{"tag outside the pattern", EventPipeline, pipeline(t, "nightly-2026"), 200},
		{"tag with shell characters", EventPipeline, pipeline(t, "v1.4.0$(reboot)"), 200},
		{"tag push", EventTagPush, fixture(t, "tag_push", nil), 200},
		{"job hook to a pipeline receiver", EventJob, fixture(t, "job", nil), 200},
		{"release hook to a pipeline receiver", EventRelease, fixture(t, "release", nil), 200},
		{"push hook", "Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/main"}`), 200},
		{"no event header", "", []byte(`{}`), 200},
		{"kind does not match the header", EventPipeline, fixture(t, "release", nil), 400},
		{"not JSON", EventPipeline, []byte(`<xml/>`), 400},
	}
	for _, c := range cases {
		code, a := e.send(c.event, c.body, "")
		if code != c.want {
			t.Errorf("%s: %d %+v, want %d", c.name, code, a, c.want)
		} else if c.want == 200 && (a.Status != "ignored" || a.Reason == "") {
			t.Errorf("%s: answer %+v", c.name, a)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if s := e.rec.Status(); len(s.Recent) != 0 || s.Current != nil || len(s.Queued) != 0 || len(e.dep.versions()) != 0 {
		t.Errorf("something was queued: %+v", s)
	}
	if strings.Contains(e.logs.String(), "$(reboot)\n") {
		t.Error("payload text reached the log unquoted")
	}
}

func TestMethodsAndPaths(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/hooks/gitlab", 405},
		{"PUT", "/hooks/gitlab", 405},
		{"POST", "/hooks/gitlab/x", 404},
		{"POST", "/", 404},
		{"GET", "/status", 200},
		{"POST", "/status", 405},
		{"GET", "/healthz", 200},
	} {
		req, _ := http.NewRequest(c.method, e.url+c.path, strings.NewReader("{}"))
		req.Header.Set("X-Gitlab-Token", testToken)
		if code, _ := e.do(req); code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, code, c.want)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(s string) string { return "max-body-bytes = 65536\n" + s })
	e.start()
	big := fixture(t, "pipeline", map[string]any{"padding": strings.Repeat("x", 70000)})
	// With Content-Length: refused before reading.
	if code, a := e.send(EventPipeline, big, ""); code != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %d %+v", code, a)
	}
	// Chunked, without Content-Length: refused while reading.
	req, _ := e.hook.Request(context.Background(), gitlabtest.Delivery{Event: EventPipeline})
	req.Body, req.ContentLength = io.NopCloser(io.MultiReader(bytes.NewReader(big), bytes.NewReader(big))), -1
	if code, a := e.do(req); code != http.StatusRequestEntityTooLarge {
		t.Errorf("large chunked body: %d %+v", code, a)
	}
	// The token is checked first: a large body without it is a 401.
	h := *e.hook
	h.Token = "wrong"
	if code, _ := e.sendWith(&h, gitlabtest.Delivery{Event: EventPipeline, Body: big}); code != 401 {
		t.Errorf("large body, wrong token: %d", code)
	}
	if s := e.rec.Status(); len(s.Recent) != 0 {
		t.Errorf("queued: %+v", s)
	}
}

func TestDuplicateDelivery(t *testing.T) {
	e := newEnv(t, nil)
	e.release("1.4.0")
	e.dep.delay = 100 * time.Millisecond
	e.start()
	key := gitlabtest.NewUUID()
	code1, a1 := e.send(EventPipeline, pipeline(t, "v1.4.0"), key)
	code2, a2 := e.send(EventPipeline, pipeline(t, "v1.4.0"), key)
	if code1 != 202 || code2 != 200 || a2.Status != "duplicate" || a2.Job != a1.Job {
		t.Fatalf("first %d %+v, retry %d %+v", code1, a1, code2, a2)
	}
	e.waitFor("the deploy", func(s Status) bool { return idle(s) && s.Deployed != "" })
	// After the deploy, and after a restart, the key is still known.
	if code, a := e.send(EventPipeline, pipeline(t, "v1.4.0"), key); code != 200 || a.Status != "duplicate" {
		t.Errorf("late retry: %d %+v", code, a)
	}
	e.shutdown()
	e.start()
	if code, a := e.send(EventPipeline, pipeline(t, "v1.4.0"), key); code != 200 || a.Status != "duplicate" || a.Job != a1.Job {
		t.Errorf("retry after restart: %d %+v", code, a)
	}
	// Without Idempotency-Key (GitLab < 17.4) the event UUID is the key.
	uuid := gitlabtest.NewUUID()
	req1, _ := e.hook.Request(context.Background(), gitlabtest.Delivery{Event: EventPipeline, Body: pipeline(t, "v1.4.0"), EventUUID: uuid})
	req2, _ := e.hook.Request(context.Background(), gitlabtest.Delivery{Event: EventPipeline, Body: pipeline(t, "v1.4.0"), EventUUID: uuid})
	req1.Header.Del("Idempotency-Key")
	req2.Header.Del("Idempotency-Key")
	if code, a := e.do(req1); code != 200 || a.Status != "skipped" {
		t.Errorf("same version again: %d %+v", code, a)
	}
	if code, a := e.do(req2); code != 200 || a.Status != "duplicate" {
		t.Errorf("same event UUID: %d %+v", code, a)
	}
	if got := e.dep.versions(); len(got) != 1 {
		t.Errorf("deployed %v, want one deploy", got)
	}
}

// TestBurst: 20 deliveries of 20 versions within one second, in random
// order: one deploy at a time, every answer fast, the newest deployed last,
// never a downgrade.
func TestBurst(t *testing.T) {
	e := newEnv(t, nil)
	var versions []string
	for i := 1; i <= 20; i++ {
		versions = append(versions, fmt.Sprintf("2.0.%d", i))
	}
	e.release(versions...)
	e.dep.delay = 150 * time.Millisecond
	e.start()

	order := rand.New(rand.NewSource(7)).Perm(20)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	begin := time.Now()
	for n, i := range order {
		wg.Add(1)
		go func(n, i int) {
			defer wg.Done()
			// Spread over one second.
			time.Sleep(time.Duration(n) * 50 * time.Millisecond)
			t0 := time.Now()
			code, a := e.send(EventPipeline, pipeline(t, "v"+versions[i]), "")
			d := time.Since(t0)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
			if code != 202 && code != 200 {
				t.Errorf("v%s: %d %+v", versions[i], code, a)
			}
		}(n, i)
	}
	wg.Wait()
	sent := time.Since(begin)
	e.waitFor("the queue to drain", func(s Status) bool { return idle(s) && s.Deployed == "2.0.20" })
	got := e.dep.versions()
	if m := e.dep.maxSeen.Load(); m != 1 {
		t.Errorf("%d deploys ran at once", m)
	}
	if got[len(got)-1] != "2.0.20" {
		t.Errorf("last deployed %s, want 2.0.20 (all: %v)", got[len(got)-1], got)
	}
	for i := 1; i < len(got); i++ {
		if compareVersions(got[i-1], got[i]) >= 0 {
			t.Errorf("deploy order %v is not increasing (downgrade at %d)", got, i)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99, max := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	if max > time.Second {
		t.Errorf("slowest answer took %s; GitLab gives up after 10 s and answers must be immediate", max)
	}
	s := e.rec.Status()
	counts := map[State]int{}
	for _, j := range s.Recent {
		counts[j.State]++
	}
	t.Logf("20 deliveries in %s: answers p50 %s p99 %s max %s; %d deploys %v; history %v",
		sent.Round(time.Millisecond), p50, p99, max, len(got), got, counts)
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x - y
		}
	}
	return len(pa) - len(pb)
}

func TestOlderVersionSkipped(t *testing.T) {
	e := newEnv(t, nil)
	e.release("1.4.0", "1.5.0", "1.3.0")
	e.start()
	if code, _ := e.send(EventPipeline, pipeline(t, "v1.5.0"), ""); code != 202 {
		t.Fatal(code)
	}
	e.waitFor("1.5", func(s Status) bool { return s.Deployed == "1.5" })
	for _, tag := range []string{"v1.4.0", "v1.5.0", "v1.5"} {
		if code, a := e.send(EventPipeline, pipeline(t, tag), ""); code != 200 || a.Status != "skipped" || !strings.Contains(a.Reason, "not newer than the deployed 1.5") {
			t.Errorf("%s: %d %+v", tag, code, a)
		}
	}
	if got := e.dep.versions(); len(got) != 1 {
		t.Errorf("deployed %v", got)
	}
}

func TestFailedDeployAndFetchRecorded(t *testing.T) {
	e := newEnv(t, nil)
	e.release("1.4.0")
	e.dep.fail = map[string]error{"1.4": errDeploy}
	e.start()
	e.send(EventPipeline, pipeline(t, "v1.4.0"), "")
	s := e.waitFor("the failure", func(s Status) bool { return idle(s) && len(s.Recent) == 1 })
	if j := s.Recent[0]; j.State != StateFailed || !strings.Contains(j.Error, errDeploy.Error()) || s.Deployed != "" {
		t.Errorf("job %+v deployed %q", j, s.Deployed)
	}
	// A green tag pipeline whose package was never released: the fetch
	// fails clearly.
	e.green("v1.6.0")
	e.send(EventPipeline, pipeline(t, "v1.6.0"), "")
	s = e.waitFor("the fetch failure", func(s Status) bool { return idle(s) && len(s.Recent) == 2 })
	if j := s.Recent[0]; j.State != StateFailed || !strings.Contains(j.Error, "has no package hello-web 1.6.0") {
		t.Errorf("job %+v", j)
	}
	// A failed version can be deployed again (a re-run pipeline).
	e.dep.fail = nil
	if code, a := e.send(EventPipeline, pipeline(t, "v1.4.0"), ""); code != 202 {
		t.Errorf("retry of a failed version: %d %+v", code, a)
	}
	e.waitFor("1.4", func(s Status) bool { return s.Deployed == "1.4" })
}

// TestRestartResumesQueue stops the receiver (SIGTERM) while a deploy runs
// and another waits: the grace period ends, the running deploy is
// abandoned, and the next start deploys what was queued.
func TestRestartResumesQueue(t *testing.T) {
	e := newEnv(t, func(s string) string {
		return strings.Replace(s, `shutdown-grace = "2s"`, `shutdown-grace = "100ms"`, 1)
	})
	e.release("1.4.0", "1.5.0", "1.6.0")
	e.dep.block = make(chan struct{})
	e.dep.started = make(chan string, 10)
	e.start()
	e.send(EventPipeline, pipeline(t, "v1.4.0"), "")
	if v := <-e.dep.started; v != "1.4" {
		t.Fatalf("started %s", v)
	}
	if code, a := e.send(EventPipeline, pipeline(t, "v1.5.0"), ""); code != 202 {
		t.Fatalf("1.5: %d %+v", code, a)
	}
	e.shutdown()
	if !strings.Contains(e.logs.String(), "abandoning the running deploy") || !strings.Contains(e.logs.String(), "deploy interrupted by the shutdown") {
		t.Errorf("no abandon logged:\n%s", e.logs.String())
	}
	// Restart: 1.4 was interrupted, 1.5 is newer and queued: 1.4 is
	// superseded, 1.5 deploys.
	e.dep.block = nil
	e.start()
	if v := <-e.dep.started; v != "1.5" {
		t.Fatalf("after restart started %s, want 1.5", v)
	}
	s := e.waitFor("1.5", func(s Status) bool { return idle(s) && s.Deployed == "1.5" })
	var states []string
	for _, j := range s.Recent {
		states = append(states, j.Version+":"+string(j.State))
	}
	if strings.Join(states, " ") != "1.5:succeeded 1.4:superseded" {
		t.Errorf("history %v", states)
	}
	if got := e.dep.versions(); len(got) != 1 || got[0] != "1.5" {
		t.Errorf("deployed %v", got)
	}

	// A crash (no shutdown at all) while 1.6 runs: the next start runs it
	// again.
	e.shutdown()
	q, err := openQueue(e.cfg.StateDir, e.rec.log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := q.submit(&Job{Tag: "v1.6.0", Version: "1.6", Delivery: "crash-test", Event: EventPipeline, PipelineID: webhooktest.TagRun("v1.6.0").Pipeline}); err != nil || out.Status != "queued" {
		t.Fatalf("submit %+v %v", out, err)
	}
	if j := q.next(); j == nil || j.State != StateRunning {
		t.Fatalf("next %+v", j)
	}
	// q is dropped here without done(): the state file says 1.6 runs.
	e.start()
	if v := <-e.dep.started; v != "1.6" {
		t.Fatalf("after the crash started %s, want 1.6", v)
	}
	s = e.waitFor("1.6", func(s Status) bool { return idle(s) && s.Deployed == "1.6" })
	if j := s.Recent[0]; j.Attempts != 2 || !strings.Contains(j.Note, "resumed") {
		t.Errorf("resumed job %+v", j)
	}
}

// TestShutdownFinishesRunningDeploy: a deploy shorter than the grace
// period is finished, not abandoned.
func TestShutdownFinishesRunningDeploy(t *testing.T) {
	e := newEnv(t, nil) // grace 2s
	e.release("1.4.0")
	e.dep.delay = 300 * time.Millisecond
	e.dep.started = make(chan string, 1)
	e.start()
	e.send(EventPipeline, pipeline(t, "v1.4.0"), "")
	<-e.dep.started
	t0 := time.Now()
	e.shutdown()
	if d := time.Since(t0); d > 1500*time.Millisecond {
		t.Errorf("shutdown took %s", d)
	}
	if got := e.dep.versions(); len(got) != 1 {
		t.Errorf("the running deploy did not finish: %v", got)
	}
	q, _ := openQueue(e.cfg.StateDir, e.rec.log, time.Now)
	if s := q.status(5); s.Deployed != "1.4" || s.Current != nil || len(s.Queued) != 0 {
		t.Errorf("state after shutdown %+v", s)
	}
}

// TestMaxAttempts: a job that keeps crashing the receiver is given up.
func TestMaxAttempts(t *testing.T) {
	e := newEnv(t, nil)
	for i := 0; i < maxAttempts; i++ {
		q, err := openQueue(e.cfg.StateDir, slogDiscard(), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			q.submit(&Job{Tag: "v1.4.0", Version: "1.4", Delivery: "k"})
		}
		if j := q.next(); j == nil {
			t.Fatalf("round %d: nothing queued: %+v", i, q.status(5))
		}
	}
	q, err := openQueue(e.cfg.StateDir, slogDiscard(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	s := q.status(5)
	if len(s.Queued) != 0 || len(s.Recent) != 1 || s.Recent[0].State != StateFailed || !strings.Contains(s.Recent[0].Error, "3 times") {
		t.Errorf("status %+v", s)
	}
}

// TestFetchPicksTarget: a release holds a .deb per Debian release (the
// default pipeline's build:debian-13 and build:debian-12); the receiver
// fetches the one for the nodes' release, named in webhook.toml or read
// from the nodes before the fetch.
func TestFetchPicksTarget(t *testing.T) {
	nodes12 := func(context.Context) (string, error) { return "debian-12", nil }
	unreachable := func(context.Context) (string, error) {
		return "", errors.New("read the nodes' Debian release: b: dial tcp 10.0.0.2:22: connection refused")
	}
	cases := []struct {
		name    string
		gitlab  string // replaces the base's target line
		nodes   func(context.Context) (string, error)
		deb     string // the .deb deployed; "" none
		target  string // the job's target
		errText string // the job's error
	}{
		{name: "named target", gitlab: `target = "debian-12"`, deb: "hello-web_1.4.0-1+deb12u1_all.deb", target: "debian-12"},
		{name: "named target wins over the nodes", gitlab: `target = "debian-13"`, nodes: nodes12, deb: "hello-web_1.4.0-1+deb13u1_all.deb", target: "debian-13"},
		{name: "the nodes' release", nodes: nodes12, deb: "hello-web_1.4.0-1+deb12u1_all.deb", target: "debian-12"},
		{name: "the nodes' build job's artifacts", gitlab: `source = "artifacts"`, nodes: nodes12, deb: "hello-web_1.4.0-1+deb12u1_all.deb", target: "debian-12"},
		{name: "named target's build job", gitlab: "source = \"artifacts\"\ntarget = \"debian-13\"", deb: "hello-web_1.4.0-1+deb13u1_all.deb", target: "debian-13"},
		{name: "nodes unreachable", nodes: unreachable,
			errText: "which .deb of v1.4.0 to fetch: read the nodes' Debian release: b: dial tcp 10.0.0.2:22: connection refused"},
		{name: "nothing reads the nodes", errText: "several Debian releases (hello-web_1.4.0-1+deb12u1_all.deb, hello-web_1.4.0-1+deb13u1_all.deb): name the nodes' release (target)"},
	}
	invDir := t.TempDir()
	writeInventory(t, invDir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(s string) string {
				s = strings.Replace(s, "target = \"debian-13\"\n", c.gitlab+"\n", 1)
				if !strings.Contains(c.gitlab, "target =") {
					s = `inventory = "` + filepath.Join(invDir, "cluster.toml") + "\"\n" + s
				}
				return s
			})
			e.target = c.nodes
			e.release("1.4.0")
			for target, deb := range makeTargetDebs(t, "1.4.0") {
				b, _ := os.ReadFile(deb)
				e.gl.AddJobArtifacts(projectID, "v1.4.0", "build:"+target, map[string][]byte{"dist/" + filepath.Base(deb): b})
			}
			e.start()
			if code, a := e.send(EventPipeline, pipeline(t, "v1.4.0"), ""); code != http.StatusAccepted {
				t.Fatalf("%d %+v", code, a)
			}
			j := e.waitFor("the job", func(s Status) bool { return idle(s) && len(s.Recent) == 1 }).Recent[0]
			if c.deb == "" {
				if j.State != StateFailed || !strings.Contains(j.Error, c.errText) || len(e.dep.versions()) != 0 {
					t.Errorf("job %+v, want failed with %q", j, c.errText)
				}
				return
			}
			if j.State != StateSucceeded || j.Deb != c.deb || j.Target != c.target {
				t.Errorf("job %s: deb %s target %q error %q; want %s for %s", j.State, j.Deb, j.Target, j.Error, c.deb, c.target)
			}
			e.dep.mu.Lock()
			defer e.dep.mu.Unlock()
			if len(e.dep.debs) != 1 || e.dep.debs[0] != c.deb {
				t.Errorf("deployed %v, want %s", e.dep.debs, c.deb)
			}
		})
	}
}
