package deploy

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
	"gitlab.com/debship/debship/ci/webhook"
	"gitlab.com/debship/debship/ci/webhook/webhooktest"
	"gitlab.com/debship/debship/internal/testlog"
)

// webhookConfig is a receiver configuration without a [deploy] command:
// it deploys to the inventory with the rolling deploy.
const webhookConfig = `listen = "127.0.0.1:0"
state-dir = "state"
shutdown-grace = "30s"
inventory = "{{INVENTORY}}"

` + webhooktest.Config + `
[gitlab.token]
env = "TEST_DEPLOY_GITLAB_TOKEN"
`

// webhookDeploy is the end to end path of a release: GitLab (the fake of
// gitlabtest) announces a green pipeline of tag v4.0.0 whose .deb is in its
// package registry; the receiver fetches it and runs the rolling deploy on
// the lab, under load, with the same glue as `debship webhook serve`
// (cluster/ship's RollingDeployer).
func webhookDeploy(t *testing.T, e *labEnv, deb string) {
	const token, readToken = "wh-lab-token-8c2b7e4f19a0d3", "glpat-lab-read-5e1d9c7a2b40"
	gl := gitlabtest.New()
	defer gl.Close()
	gl.AddProject(webhooktest.ProjectID, webhooktest.ProjectPath)
	gl.AddToken(readToken, gitlabtest.Reporter)
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	gl.AddPackageFile(webhooktest.ProjectID, "hello-web", "4.0.0", filepath.Base(deb), b)
	// The receiver asks GitLab before it deploys: the pipeline the
	// delivery names passed, and the tag points at the commit it ran for.
	run := webhooktest.TagRun("v4.0.0")
	gl.AddPipeline(webhooktest.ProjectID, gitlabtest.Pipeline{ID: run.Pipeline, Ref: "v4.0.0", Tag: true, SHA: run.SHA, Status: "success"})

	dir := t.TempDir()
	t.Setenv("TEST_DEPLOY_GITLAB_TOKEN", readToken)
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("{{INVENTORY}}", e.inv.Path, "{{GITLAB}}", gl.URL).Replace(webhookConfig)
	if err := os.WriteFile(filepath.Join(dir, "webhook.toml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := webhook.Load(filepath.Join(dir, "webhook.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dep := webhook.DeployerFunc(func(ctx context.Context, job webhook.Job, debPath string) error {
		o := e.options(t, debPath)
		o.Holder = "webhook job " + job.ID + " (" + job.Tag + ")"
		res, err := Run(ctx, o)
		logResult(t, res)
		return err
	})
	rec, err := webhook.New(cfg, webhook.Options{Deployer: dep, Log: slog.New(slog.NewTextHandler(testlog.Writer(t), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Serve(ctx, ln) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("receiver: %v", err)
		}
	}()

	load := e.clients()
	time.Sleep(2 * time.Second)
	hook := &gitlabtest.Hook{URL: "http://" + ln.Addr().String() + cfg.Path, Token: token}
	code, body, err := hook.Send(context.Background(), gitlabtest.Delivery{Event: "Pipeline Hook", Body: webhooktest.Pipeline(webhooktest.ProjectID, webhooktest.ProjectPath, "v4.0.0")})
	if err != nil || code != 202 {
		t.Fatalf("delivery: %d %s %v", code, body, err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, err := rec.Wait(wctx, func(s webhook.Status) bool {
		return s.Current == nil && len(s.Queued) == 0 && len(s.Recent) > 0
	})
	if err != nil {
		t.Fatalf("the receiver did not finish the deploy: %v (%+v)", err, st)
	}
	if j := st.Recent[0]; j.State != webhook.StateSucceeded || st.Deployed != j.Version || j.SHA != run.SHA {
		t.Errorf("job %+v, deployed %q", j, st.Deployed)
	}
	load.finish(t, 1500, 1, "webhook deploy of v4")
	e.expectVersion(t, built(t, "4.0-1"), "4.0.0")
}
