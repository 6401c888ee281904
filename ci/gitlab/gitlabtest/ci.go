package gitlabtest

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// Pipeline is a CI pipeline of a project: for a tag, Ref is the tag's name
// and Tag is true.
type Pipeline struct {
	ID     int64
	Ref    string
	Tag    bool
	SHA    string // the commit it ran for
	Status string // created, pending, running, success, failed, canceled, skipped, manual …
}

// CIJob is a job of a pipeline; its ref, tag and commit are its pipeline's.
type CIJob struct {
	ID         int64
	PipelineID int64
	Name       string
	Stage      string
	Status     string
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// CommitOf is the commit a ref stands for in the fake: a full SHA is
// itself; any other ref (a branch, a tag name) gets a commit of its own,
// derived from its name.
func CommitOf(ref string) string {
	if shaRE.MatchString(ref) {
		return ref
	}
	sum := sha1.Sum([]byte("gitlabtest commit of " + ref))
	return hex.EncodeToString(sum[:])
}

// AddPipeline records a pipeline with its jobs. A tag pipeline creates its
// tag at the pipeline's commit if the tag does not exist yet (pushing the
// tag is what started it). Pipeline and job IDs are unique: reusing one
// for another ref is a mistake in the test and panics.
func (s *Server) AddPipeline(projectID int64, pl Pipeline, jobs ...CIJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[strconv.FormatInt(projectID, 10)]
	if old := p.Pipelines[pl.ID]; old != nil && old.Ref != pl.Ref {
		panic(fmt.Sprintf("gitlabtest: pipeline %d exists already, for %s", pl.ID, old.Ref))
	}
	p.Pipelines[pl.ID] = &pl
	if _, ok := p.Tags[pl.Ref]; pl.Tag && !ok {
		p.Tags[pl.Ref] = pl.SHA
	}
	for _, j := range jobs {
		if old := p.Jobs[j.ID]; old != nil && old.PipelineID != pl.ID {
			panic(fmt.Sprintf("gitlabtest: job %d exists already, in pipeline %d", j.ID, old.PipelineID))
		}
		j.PipelineID = pl.ID
		p.Jobs[j.ID] = &j
	}
}

// SetTag creates tag at commit sha, or moves it there (git push --force
// of a tag).
func (s *Server) SetTag(projectID int64, tag, sha string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projects[strconv.FormatInt(projectID, 10)].Tags[tag] = sha
}

// AddRelease creates the release of an existing tag directly, as `debship
// release` would have.
func (s *Server) AddRelease(projectID int64, tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[strconv.FormatInt(projectID, 10)]
	if _, ok := p.Tags[tag]; !ok {
		panic("gitlabtest: no tag " + tag + " to release")
	}
	p.Releases[tag] = &Release{TagName: tag, Name: tag}
}

// jobTokenRefused answers as GitLab does when a CI job token is used on an
// endpoint the job token documentation does not list (these three): the
// JOB-TOKEN header is not read there, and an anonymous request does not
// see a private project.
func (c *reqCtx) jobTokenRefused() bool {
	if c.tok.job {
		c.message(http.StatusNotFound, "404 Project Not Found")
		return true
	}
	return false
}

// id reads the integer path parameter of a pipeline or job, answering 400
// as Grape's validation does when it is not one (and a job token as
// jobTokenRefused does).
func (c *reqCtx) id(param, v string) (int64, bool) {
	if c.jobTokenRefused() {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		c.invalid(param)
		return 0, false
	}
	return n, true
}

var fakeTime = time.Date(2026, 3, 2, 10, 19, 44, 0, time.UTC)

// pipeline answers GET /projects/:id/pipelines/:pipeline_id; an unknown ID
// is ActiveRecord's not found, which the API answers "404 Not found".
func (s *Server) pipeline(c *reqCtx, id string) {
	n, ok := c.id("pipeline_id", id)
	if !ok {
		return
	}
	pl := c.project.Pipelines[n]
	if pl == nil {
		c.message(http.StatusNotFound, "404 Not found")
		return
	}
	c.json(http.StatusOK, map[string]any{
		"id": pl.ID, "iid": pl.ID % 1000, "project_id": c.project.ID, "status": pl.Status, "source": "push",
		"ref": pl.Ref, "sha": pl.SHA, "before_sha": "0000000000000000000000000000000000000000", "tag": pl.Tag,
		"yaml_errors": nil, "created_at": fakeTime, "updated_at": fakeTime, "started_at": fakeTime, "finished_at": fakeTime,
		"duration": 331, "queued_duration": 4, "coverage": nil,
		"web_url":         fmt.Sprintf("%s/-/pipelines/%d", s.webURL(c.project), pl.ID),
		"detailed_status": map[string]any{"group": pl.Status, "text": pl.Status, "label": pl.Status},
	})
}

// ciJob answers GET /projects/:id/jobs/:job_id.
func (s *Server) ciJob(c *reqCtx, id string) {
	n, ok := c.id("job_id", id)
	if !ok {
		return
	}
	j := c.project.Jobs[n]
	if j == nil {
		c.message(http.StatusNotFound, "404 Not found")
		return
	}
	pl := c.project.Pipelines[j.PipelineID]
	c.json(http.StatusOK, map[string]any{
		"id": j.ID, "name": j.Name, "stage": j.Stage, "status": j.Status, "ref": pl.Ref, "tag": pl.Tag,
		"allow_failure": false, "created_at": fakeTime, "started_at": fakeTime, "finished_at": fakeTime,
		"commit": commitJSON(pl.SHA),
		"pipeline": map[string]any{
			"id": pl.ID, "project_id": c.project.ID, "ref": pl.Ref, "sha": pl.SHA, "status": pl.Status,
		},
		"web_url": fmt.Sprintf("%s/-/jobs/%d", s.webURL(c.project), j.ID),
	})
}

// tag answers GET /projects/:id/repository/tags/:tag_name: a lightweight
// tag, so target is the commit too; release is null without one.
func (s *Server) tag(c *reqCtx, name string) {
	if c.jobTokenRefused() {
		return
	}
	sha, ok := c.project.Tags[name]
	if !ok {
		c.message(http.StatusNotFound, "404 Tag Not Found")
		return
	}
	var release any
	if r := c.project.Releases[name]; r != nil {
		release = map[string]string{"tag_name": r.TagName, "description": r.Description}
	}
	c.json(http.StatusOK, map[string]any{
		"name": name, "message": nil, "target": sha, "commit": commitJSON(sha),
		"release": release, "protected": false, "created_at": nil,
	})
}

func commitJSON(sha string) map[string]any {
	return map[string]any{
		"id": sha, "short_id": sha[:min(8, len(sha))], "title": "Release", "message": "Release\n",
		"created_at": fakeTime, "parent_ids": []string{}, "author_name": "Ada Maintainer", "author_email": "ada@example.org",
		"authored_date": fakeTime, "committer_name": "Ada Maintainer", "committer_email": "ada@example.org", "committed_date": fakeTime,
	}
}
