package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// What GitLab itself says of a pipeline, a job and a tag: the webhook
// receiver (ci/webhook) asks before it deploys instead of trusting what a
// delivery claims. The calls retry 429 and 5xx answers like every other
// call of this package; their errors are *Error, and Refused tells a
// definite answer from one that may pass.

// Pipeline is a CI pipeline as GitLab reports it
// (https://docs.gitlab.com/api/pipelines/#get-a-single-pipeline).
type Pipeline struct {
	ID     int64
	Status string // success, failed, running, canceled …
	Ref    string // a tag pipeline's is the tag's name
	Tag    bool
	SHA    string // the commit it ran for
}

// CIJob is a CI job as GitLab reports it
// (https://docs.gitlab.com/api/jobs/#get-a-single-job).
type CIJob struct {
	ID         int64
	Name       string
	Status     string
	Ref        string
	Tag        bool
	PipelineID int64
	SHA        string // the commit of its pipeline
}

// Tag is a repository tag as GitLab reports it
// (https://docs.gitlab.com/api/tags/#get-a-single-repository-tag).
type Tag struct {
	Name    string
	Commit  string // the commit it points at (commit.id: target is the tag object of an annotated tag)
	Release bool   // a release exists for it
}

// GetPipeline reads pipeline id of cfg.Project.
func GetPipeline(ctx context.Context, cfg Config, id int64) (*Pipeline, error) {
	r, err := newReader(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p, resp, err := r.c.Pipelines.GetPipeline(cfg.Project, id, gl.WithContext(ctx))
	if err != nil {
		return nil, r.readError(fmt.Sprintf("reading pipeline %d", id), fmt.Sprintf("pipeline %d", id), resp, err)
	}
	return &Pipeline{ID: p.ID, Status: p.Status, Ref: p.Ref, Tag: p.Tag, SHA: p.SHA}, nil
}

// GetCIJob reads CI job id of cfg.Project.
func GetCIJob(ctx context.Context, cfg Config, id int64) (*CIJob, error) {
	r, err := newReader(ctx, cfg)
	if err != nil {
		return nil, err
	}
	j, resp, err := r.c.Jobs.GetJob(cfg.Project, id, gl.WithContext(ctx))
	if err != nil {
		return nil, r.readError(fmt.Sprintf("reading job %d", id), fmt.Sprintf("job %d", id), resp, err)
	}
	return &CIJob{ID: j.ID, Name: j.Name, Status: j.Status, Ref: j.Ref, Tag: j.Tag, PipelineID: j.Pipeline.ID, SHA: j.Pipeline.Sha}, nil
}

// GetTag reads tag of cfg.Project (the client URL-encodes the name).
func GetTag(ctx context.Context, cfg Config, tag string) (*Tag, error) {
	r, err := newReader(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t, resp, err := r.c.Tags.GetTag(cfg.Project, tag, gl.WithContext(ctx))
	if err != nil {
		return nil, r.readError("reading tag "+tag, "tag "+tag, resp, err)
	}
	out := &Tag{Name: t.Name, Release: t.Release != nil}
	if t.Commit != nil {
		out.Commit = t.Commit.ID
	}
	return out, nil
}

func newReader(ctx context.Context, cfg Config) (*releaser, error) {
	switch {
	case cfg.APIURL == "":
		return nil, errors.New("no GitLab API URL to ask")
	case cfg.Project == "":
		return nil, errors.New("no GitLab project to ask about")
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	return &releaser{cfg: cfg, c: c, ctx: ctx, log: logw}, nil
}

// readError is apiError, except that a 404 names the thing read: the
// client drops the body of a 404, so GitLab's "404 Project Not Found" and
// "404 Not found" (no such pipeline) cannot be told apart.
func (r *releaser) readError(what, thing string, resp *gl.Response, err error) error {
	if status, _ := apiStatus(resp, err); status != http.StatusNotFound {
		return r.apiError(what, resp, err)
	}
	msg := fmt.Sprintf("%s failed: project %s has no %s, or the token cannot see the project (404 Not Found)", what, r.cfg.Project, thing)
	if r.cfg.ProjectHint != "" {
		msg += "; " + r.cfg.ProjectHint
	}
	return &Error{Status: http.StatusNotFound, msg: msg}
}
