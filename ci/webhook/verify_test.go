package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
	"gitlab.com/debship/debship/ci/webhook/webhooktest"
)

// TestDeliveryConfirmedWithGitLab: a delivery only says what its sender
// claims; before it fetches or deploys anything the receiver asks GitLab
// whether the pipeline (or job, or release) passed and whether the tag
// still points at the commit that ran. When GitLab says otherwise the job
// ends refused with one sentence, and nothing is fetched or deployed.
func TestDeliveryConfirmedWithGitLab(t *testing.T) {
	run := webhooktest.TagRun("v1.4.0")
	other := gitlabtest.CommitOf("an unreviewed commit")
	trigger := func(event string) func(string) string {
		return func(s string) string { return strings.Replace(s, `event = "pipeline"`, event, 1) }
	}
	cases := []struct {
		name   string
		config func(string) string
		setup  func(e *env)
		event  string
		body   func(t *testing.T) []byte
		state  State
		reason string // in the job's error
	}{
		{name: "green pipeline", state: StateSucceeded},
		{name: "the API says the pipeline failed", state: StateRefused,
			setup: func(e *env) {
				e.gl.AddPipeline(projectID, gitlabtest.Pipeline{ID: run.Pipeline, Ref: "v1.4.0", Tag: true, SHA: run.SHA, Status: "failed"})
			},
			reason: "GitLab says pipeline 3101 of v1.4.0 is failed, not success as the delivery claims; nothing was deployed"},
		{name: "the tag was moved after its pipeline", state: StateRefused,
			setup:  func(e *env) { e.gl.SetTag(projectID, "v1.4.0", other) },
			reason: "tag v1.4.0 points at commit " + other[:12] + ", but pipeline 3101 ran for 9f2c4e1b7a3d: the tag was moved after its pipeline ran, or the delivery is not GitLab's; nothing was deployed"},
		{name: "another tag's green pipeline", state: StateRefused,
			setup: func(e *env) { e.release("1.5.0") },
			body: func(t *testing.T) []byte {
				return fixture(t, "pipeline", map[string]any{"object_attributes.ref": "v1.5.0"})
			},
			reason: "GitLab says pipeline 3101 ran for v1.4.0, not for the tag v1.5.0; nothing was deployed"},
		{name: "a pipeline GitLab does not know", state: StateRefused,
			body:   func(t *testing.T) []byte { return fixture(t, "pipeline", map[string]any{"object_attributes.id": 77}) },
			reason: "GitLab did not confirm the delivery: reading pipeline 77 failed: project 42 has no pipeline 77, or the token cannot see the project (404 Not Found)"},
		{name: "the delivery names another commit", state: StateRefused,
			body: func(t *testing.T) []byte {
				return fixture(t, "pipeline", map[string]any{"object_attributes.sha": other})
			},
			reason: "the delivery names commit " + other[:12] + ", but GitLab says tag v1.4.0 points at 9f2c4e1b7a3d; nothing was deployed"},
		{name: "job trigger: the API says the job failed", state: StateRefused,
			config: trigger("event = \"job\"\njob = \"release\""), event: EventJob,
			setup: func(e *env) {
				e.gl.AddPipeline(projectID, gitlabtest.Pipeline{ID: run.Pipeline, Ref: "v1.4.0", Tag: true, SHA: run.SHA, Status: "failed"},
					gitlabtest.CIJob{ID: run.Job, Name: "release", Stage: "release", Status: "failed"})
			},
			body:   func(t *testing.T) []byte { return fixture(t, "job", nil) },
			reason: "GitLab says job 9003 (release) of v1.4.0 is failed, not success as the delivery claims"},
		{name: "job trigger: green job", state: StateSucceeded,
			config: trigger("event = \"job\"\njob = \"release\""), event: EventJob,
			body: func(t *testing.T) []byte { return fixture(t, "job", nil) }},
		{name: "release trigger: no such release", state: StateRefused,
			config: trigger(`event = "release"`), event: EventRelease,
			setup:  func(e *env) { e.green("v1.5.0") },
			body:   func(t *testing.T) []byte { return fixture(t, "release", map[string]any{"tag": "v1.5.0"}) },
			reason: "GitLab has no release of tag v1.5.0, which the delivery says was created; nothing was deployed"},
		{name: "release trigger: the tag is elsewhere", state: StateRefused,
			config: trigger(`event = "release"`), event: EventRelease,
			setup:  func(e *env) { e.gl.SetTag(projectID, "v1.4.0", other) },
			body:   func(t *testing.T) []byte { return fixture(t, "release", nil) },
			reason: "the delivery names commit 9f2c4e1b7a3d, but GitLab says tag v1.4.0 points at " + other[:12]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.config)
			e.release("1.4.0")
			if c.setup != nil {
				c.setup(e)
			}
			e.start()
			event, body := EventPipeline, pipeline(t, "v1.4.0")
			if c.event != "" {
				event = c.event
			}
			if c.body != nil {
				body = c.body(t)
			}
			if code, a := e.send(event, body, ""); code != 202 {
				t.Fatalf("delivery: %d %+v", code, a)
			}
			s := e.waitFor("the job", func(s Status) bool { return idle(s) && len(s.Recent) == 1 })
			j := s.Recent[0]
			if j.State != c.state || !strings.Contains(j.Error, c.reason) {
				t.Fatalf("job %s: %q; want %s: %q", j.State, j.Error, c.state, c.reason)
			}
			if c.state == StateSucceeded {
				if j.SHA != run.SHA || s.Deployed != "1.4" {
					t.Errorf("deployed %q from commit %q, want 1.4 from %s", s.Deployed, j.SHA, run.SHA)
				}
				return
			}
			expectNothingDeployed(t, e, s)
			if !strings.Contains(e.logs.String(), "deploy refused") {
				t.Errorf("the refusal is not in the journal:\n%s", e.logs.String())
			}
		})
	}
}

// TestGitLabDownWhileConfirming: a GitLab that answers 503 even after the
// client's retries is not a refusal: the job fails as a failed fetch does,
// nothing is deployed, and a new event for the tag deploys.
func TestGitLabDownWhileConfirming(t *testing.T) {
	e := newEnv(t, nil)
	e.release("1.4.0")
	e.gl.Fail("GET", "/pipelines/", 503, 5) // the first try and 4 retries
	e.start()
	e.send(EventPipeline, pipeline(t, "v1.4.0"), "")
	s := e.waitFor("the failure", func(s Status) bool { return idle(s) && len(s.Recent) == 1 })
	want := "could not confirm the delivery with GitLab: reading pipeline 3101 failed: GitLab kept answering 503 Service Unavailable"
	if j := s.Recent[0]; j.State != StateFailed || !strings.Contains(j.Error, want) {
		t.Fatalf("job %s %q, want failed with %q", j.State, j.Error, want)
	}
	expectNothingDeployed(t, e, s)
	if code, a := e.send(EventPipeline, pipeline(t, "v1.4.0"), ""); code != 202 {
		t.Fatalf("a new event: %d %+v", code, a)
	}
	e.waitFor("the deploy", func(s Status) bool { return s.Deployed == "1.4" })
}

// expectNothingDeployed: no deploy ran, no .deb was downloaded, and the
// state file records no deployed version.
func expectNothingDeployed(t *testing.T, e *env, s Status) {
	t.Helper()
	if got := e.dep.versions(); len(got) != 0 || s.Deployed != "" {
		t.Errorf("deployed %v (status says %q)", got, s.Deployed)
	}
	for _, r := range e.gl.Requests() {
		if strings.Contains(r.Path, "/packages/generic/") || strings.Contains(r.Path, "/artifacts/") {
			t.Errorf("fetched although not confirmed: %s %s", r.Method, r.Path)
		}
	}
	if debs, _ := filepath.Glob(filepath.Join(e.cfg.StateDir, "debs", "*.deb")); len(debs) != 0 {
		t.Errorf("downloaded %v", debs)
	}
	state, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "state.json"))
	if err != nil || strings.Contains(string(state), `"deployed"`) {
		t.Errorf("state file: %v\n%s", err, state)
	}
}
