package webhook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gitlab.com/debship/debship/ci/gitlab"
)

// Verifier confirms with GitLab what a delivery claims, before anything is
// fetched. The secret token and the signature only say who sent a
// delivery: a leaked token, a replay or a tag moved after its pipeline ran
// must not deploy a failed pipeline or other code than was tested, and the
// receiver holds a token that can read the project, so it asks.
type Verifier interface {
	// Verify returns the commit the job deploys (the tag's, confirmed),
	// a *Refusal when GitLab does not confirm the delivery, or another
	// error when GitLab could not be asked.
	Verify(ctx context.Context, job Job) (sha string, err error)
}

// Refusal is a job GitLab did not confirm, in one sentence that says what
// did not match. The job ends refused: nothing is fetched or deployed.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refuse(format string, a ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, a...) + "; nothing was deployed"}
}

// GitLabVerifier asks the GitLab of the configuration: for a Pipeline Hook
// the pipeline (success, for the tag), for a Job Hook the job (the
// configured job, success, for the tag), for a Release Hook whether the
// release exists; then the tag, which must point at the commit the
// pipeline or job ran for, and at the commit the delivery names if it
// names one.
type GitLabVerifier struct {
	Config *Config
	// Retry waits of the API client; zero: its defaults (tests shorten them).
	RetryWaitMin, RetryWaitMax time.Duration
}

// Verify implements Verifier.
func (v *GitLabVerifier) Verify(ctx context.Context, j Job) (string, error) {
	cfg := v.Config.apiConfig(j.Tag, nil, v.RetryWaitMin, v.RetryWaitMax)
	ran, what, err := v.claim(ctx, cfg, j)
	if err != nil {
		return "", err
	}
	t, err := gitlab.GetTag(ctx, cfg, j.Tag)
	if err != nil {
		return "", unconfirmed(err)
	}
	switch {
	case t.Commit == "":
		return "", refuse("GitLab names no commit for tag %s", j.Tag)
	case j.Event == EventRelease && !t.Release:
		return "", refuse("GitLab has no release of tag %s, which the delivery says was created", j.Tag)
	case j.Event != EventRelease && t.Commit != ran:
		return "", refuse("tag %s points at commit %s, but %s ran for %s: the tag was moved after its pipeline ran, or the delivery is not GitLab's", j.Tag, shortSHA(t.Commit), what, shortSHA(ran))
	case j.SHA != "" && !strings.HasPrefix(t.Commit, j.SHA):
		return "", refuse("the delivery names commit %s, but GitLab says tag %s points at %s", shortSHA(j.SHA), j.Tag, shortSHA(t.Commit))
	}
	return t.Commit, nil
}

// claim checks what the delivery says ran, and returns the commit it ran
// for and its name ("pipeline 3101"); a release event names no run.
func (v *GitLabVerifier) claim(ctx context.Context, cfg gitlab.Config, j Job) (sha, what string, err error) {
	switch j.Event {
	case EventRelease:
		return "", "", nil
	case EventPipeline:
		if j.PipelineID == 0 {
			return "", "", refuse("the delivery names no pipeline to confirm with GitLab")
		}
		p, err := gitlab.GetPipeline(ctx, cfg, j.PipelineID)
		if err != nil {
			return "", "", unconfirmed(err)
		}
		what = fmt.Sprintf("pipeline %d", p.ID)
		switch {
		case p.Status != "success":
			return "", "", refuse("GitLab says %s of %s is %s, not success as the delivery claims", what, j.Tag, clip(p.Status))
		case !p.Tag || p.Ref != j.Tag:
			return "", "", refuse("GitLab says %s ran for %s, not for the tag %s", what, clip(p.Ref), j.Tag)
		}
		return p.SHA, what, nil
	case EventJob:
		if j.CIJob == 0 {
			return "", "", refuse("the delivery names no job to confirm with GitLab")
		}
		cj, err := gitlab.GetCIJob(ctx, cfg, j.CIJob)
		if err != nil {
			return "", "", unconfirmed(err)
		}
		what = fmt.Sprintf("job %d (%s)", cj.ID, clip(cj.Name))
		switch {
		case cj.Name != v.Config.Job:
			return "", "", refuse("GitLab says %s is not the job %s that deploys", what, v.Config.Job)
		case cj.Status != "success":
			return "", "", refuse("GitLab says %s of %s is %s, not success as the delivery claims", what, j.Tag, clip(cj.Status))
		case !cj.Tag || cj.Ref != j.Tag:
			return "", "", refuse("GitLab says %s ran for %s, not for the tag %s", what, clip(cj.Ref), j.Tag)
		}
		return cj.SHA, what, nil
	}
	return "", "", refuse("a %s cannot be confirmed with GitLab", clip(j.Event))
}

// unconfirmed is a question GitLab did not answer yes to. Its definite
// answer (a 4xx: no such pipeline, a token it rejects) refuses the job. A
// failure that may pass (a 5xx or 429 after the client's retries, GitLab
// unreachable) fails it like a failed fetch: the queue does not retry by
// itself; a new event for the tag (the pipeline's last job retried) does.
// GitLab's "Resend request" repeats the delivery's Idempotency-Key, which
// the queue answers as a duplicate.
func unconfirmed(err error) error {
	if gitlab.Refused(err) {
		return &Refusal{Reason: "GitLab did not confirm the delivery: " + err.Error() + "; nothing was deployed"}
	}
	return fmt.Errorf("could not confirm the delivery with GitLab: %w", err)
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
