package gitlab_test

import (
	"context"
	"testing"

	"gitlab.com/debship/debship/ci/gitlab"
	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
)

// TestReadPipelineJobTag: what the webhook receiver asks GitLab before it
// deploys: a pipeline, a job and a tag as the API reports them, a missing
// one named as missing, and a definite refusal told apart from a failure
// that may pass.
func TestReadPipelineJobTag(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cfg := f.fetchCfg("v1.4.0")
	cfg.Project = projectPath // a path, URL-encoded as one segment
	sha := gitlabtest.CommitOf("v1.5.0~rc1")
	f.srv.AddPipeline(projectID, gitlabtest.Pipeline{ID: 3101, Ref: "v1.5.0~rc1", Tag: true, SHA: sha, Status: "failed"},
		gitlabtest.CIJob{ID: 9003, Name: "release", Stage: "release", Status: "success"})

	p, err := gitlab.GetPipeline(ctx, cfg, 3101)
	if err != nil || *p != (gitlab.Pipeline{ID: 3101, Status: "failed", Ref: "v1.5.0~rc1", Tag: true, SHA: sha}) {
		t.Errorf("pipeline %+v %v", p, err)
	}
	j, err := gitlab.GetCIJob(ctx, cfg, 9003)
	if err != nil || *j != (gitlab.CIJob{ID: 9003, Name: "release", Status: "success", Ref: "v1.5.0~rc1", Tag: true, PipelineID: 3101, SHA: sha}) {
		t.Errorf("job %+v %v", j, err)
	}
	// The tag the pipeline created, its name encoded in the path.
	tag, err := gitlab.GetTag(ctx, cfg, "v1.5.0~rc1")
	if err != nil || *tag != (gitlab.Tag{Name: "v1.5.0~rc1", Commit: sha}) {
		t.Errorf("tag %+v %v", tag, err)
	}
	if tag, err := gitlab.GetTag(ctx, cfg, "v1.4.0"); err != nil || tag.Commit != gitlabtest.CommitOf("v1.4.0") || tag.Release {
		t.Errorf("v1.4.0: %+v %v", tag, err)
	}
	f.srv.AddRelease(projectID, "v1.4.0")
	if tag, err := gitlab.GetTag(ctx, cfg, "v1.4.0"); err != nil || !tag.Release {
		t.Errorf("v1.4.0 after its release: %+v %v", tag, err)
	}

	_, err = gitlab.GetPipeline(ctx, cfg, 3102)
	assertOneSentence(t, err, "reading pipeline 3102 failed: project acme/hello-web has no pipeline 3102, or the token cannot see the project (404 Not Found)")
	if !gitlab.Refused(err) {
		t.Errorf("a missing pipeline is not a refusal: %v", err)
	}
	_, err = gitlab.GetTag(ctx, cfg, "v9")
	assertOneSentence(t, err, "reading tag v9 failed: project acme/hello-web has no tag v9, or the token cannot see the project (404 Not Found)")
	_, err = gitlab.GetCIJob(ctx, cfg, 1)
	assertOneSentence(t, err, "project acme/hello-web has no job 1")

	// A 5xx that outlasts the client's retries may pass: not a refusal.
	f.srv.Fail("GET", "/pipelines/3101", 503, 5)
	_, err = gitlab.GetPipeline(ctx, cfg, 3101)
	assertOneSentence(t, err, "GitLab kept answering 503 Service Unavailable: 503 Service Unavailable after 4 retries")
	if gitlab.Refused(err) {
		t.Errorf("a 503 is a refusal: %v", err)
	}
	// The docs list none of these endpoints for the CI job token: GitLab
	// reads no JOB-TOKEN there, and the private project is not found.
	jc := f.cfg()
	_, err = gitlab.GetTag(ctx, jc, "v1.4.0")
	assertOneSentence(t, err, "reading tag v1.4.0 failed: project 42 has no tag v1.4.0, or the token cannot see the project (404 Not Found)")
	if !gitlab.Refused(err) {
		t.Errorf("not a refusal: %v", err)
	}
	want := "/api/v4/projects/acme%2Fhello-web/repository/tags/v1%2E5%2E0~rc1"
	found := false
	for _, r := range f.srv.Requests() {
		found = found || (r.Path == want && r.Status == 200)
	}
	if !found {
		t.Errorf("no request for %s: %+v", want, f.srv.Requests())
	}
}
