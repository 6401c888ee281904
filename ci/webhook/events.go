package webhook

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gitlab.com/debship/debship/debbuild/debversion"
)

// The events GitLab sends (X-Gitlab-Event) that the receiver reads. Their
// payloads are documented at
// https://docs.gitlab.com/user/project/integrations/webhook_events/ ;
// only the fields a deploy decision needs are decoded, and unknown fields
// are ignored, so a new GitLab version adding fields changes nothing.
const (
	EventPipeline = "Pipeline Hook"
	EventRelease  = "Release Hook"
	EventTagPush  = "Tag Push Hook"
	EventJob      = "Job Hook"
)

type projectInfo struct {
	ID   int64  `json:"id"`
	Path string `json:"path_with_namespace"`
}

// objectKind is the field every payload names its kind by; each event
// embeds it so that one decode of the body also checks the kind.
type objectKind struct {
	ObjectKind string `json:"object_kind"`
}

func (k *objectKind) kind() string { return k.ObjectKind }

// pipelineEvent: object_kind "pipeline".
type pipelineEvent struct {
	objectKind
	Attrs struct {
		ID     int64  `json:"id"`
		Ref    string `json:"ref"` // the tag name itself on a tag pipeline
		Tag    bool   `json:"tag"`
		SHA    string `json:"sha"`
		Status string `json:"status"`
	} `json:"object_attributes"`
	Project projectInfo `json:"project"`
	Builds  []struct {
		ID     int64  `json:"id"`
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"builds"`
}

// releaseEvent: object_kind "release".
type releaseEvent struct {
	objectKind
	Action  string      `json:"action"` // create, update, delete
	Tag     string      `json:"tag"`
	Project projectInfo `json:"project"`
	Commit  struct {
		ID string `json:"id"`
	} `json:"commit"`
}

// tagPushEvent: object_kind "tag_push".
type tagPushEvent struct {
	objectKind
	Ref       string       `json:"ref"` // refs/tags/<tag>
	ProjectID int64        `json:"project_id"`
	Project   *projectInfo `json:"project"`
}

// jobEvent: object_kind "build" (GitLab's old name for a job).
type jobEvent struct {
	objectKind
	Ref         string       `json:"ref"`
	Tag         bool         `json:"tag"`
	SHA         string       `json:"sha"`
	BuildID     int64        `json:"build_id"`
	BuildName   string       `json:"build_name"`
	BuildStatus string       `json:"build_status"`
	PipelineID  int64        `json:"pipeline_id"`
	ProjectID   int64        `json:"project_id"`
	Project     *projectInfo `json:"project"` // only in newer payloads
}

// trigger is what a delivery asks for when it should deploy.
type trigger struct {
	Tag, Version, SHA string
	ProjectID         int64
	ProjectPath       string
	PipelineID        int64
	CIJob             int64 // the job of a Job Hook
}

// badPayload is a body that is not the JSON of the event it claims to be:
// GitLab never sends one, so it is answered 400.
type badPayload struct{ err error }

func (e badPayload) Error() string { return e.err.Error() }

// safeTagRE is what a tag must look like, whatever [trigger] tags allows:
// the tag reaches file names, a deploy command's environment and logs, and
// Git allows tags such as "$(reboot)".
var safeTagRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$`)

// decide reads a delivery. It returns the deploy it asks for, or why it is
// ignored (an empty trigger and a reason), or a badPayload error.
func (c *Config) decide(event string, body []byte) (*trigger, string, error) {
	var t trigger
	var p projectInfo
	switch event {
	case EventPipeline:
		var e pipelineEvent
		if err := unmarshal(body, &e, "pipeline", event); err != nil {
			return nil, "", err
		}
		p, t.Tag, t.SHA, t.PipelineID = e.Project, e.Attrs.Ref, e.Attrs.SHA, e.Attrs.ID
		if why := c.wrongProject(p); why != "" {
			return nil, why, nil
		}
		switch {
		case c.Trigger != TriggerPipeline:
			return nil, c.notTrigger(event), nil
		case !e.Attrs.Tag:
			return nil, fmt.Sprintf("pipeline %d is for the branch %s, not a tag", e.Attrs.ID, clip(e.Attrs.Ref)), nil
		case e.Attrs.Status != "success":
			return nil, fmt.Sprintf("pipeline %d of %s is %s, not success", e.Attrs.ID, clip(e.Attrs.Ref), clip(e.Attrs.Status)), nil
		}
		if c.Job != "" {
			ok := false
			for _, b := range e.Builds {
				// A retried job appears once per try: one success is enough.
				ok = ok || (b.Name == c.Job && b.Status == "success")
			}
			if !ok {
				return nil, fmt.Sprintf("job %s did not succeed in pipeline %d", c.Job, e.Attrs.ID), nil
			}
		}
	case EventRelease:
		var e releaseEvent
		if err := unmarshal(body, &e, "release", event); err != nil {
			return nil, "", err
		}
		p, t.Tag, t.SHA = e.Project, e.Tag, e.Commit.ID
		if why := c.wrongProject(p); why != "" {
			return nil, why, nil
		}
		switch {
		case c.Trigger != TriggerRelease:
			return nil, c.notTrigger(event), nil
		case e.Action != "create":
			return nil, fmt.Sprintf("release %s was %sd; only a created release deploys", clip(e.Tag), clip(e.Action)), nil
		}
	case EventJob:
		var e jobEvent
		if err := unmarshal(body, &e, "build", event); err != nil {
			return nil, "", err
		}
		p = projectInfo{ID: e.ProjectID}
		if e.Project != nil {
			p.Path = e.Project.Path
		}
		t.Tag, t.SHA, t.PipelineID, t.CIJob = e.Ref, e.SHA, e.PipelineID, e.BuildID
		if why := c.wrongProject(p); why != "" {
			return nil, why, nil
		}
		switch {
		case c.Trigger != TriggerJob:
			return nil, c.notTrigger(event), nil
		case e.BuildName != c.Job:
			return nil, fmt.Sprintf("job %s is not the job %s that deploys", clip(e.BuildName), c.Job), nil
		case !e.Tag:
			return nil, fmt.Sprintf("job %s ran for the branch %s, not a tag", clip(e.BuildName), clip(e.Ref)), nil
		case e.BuildStatus != "success":
			return nil, fmt.Sprintf("job %s of %s is %s, not success", clip(e.BuildName), clip(e.Ref), clip(e.BuildStatus)), nil
		}
	case EventTagPush:
		var e tagPushEvent
		if err := unmarshal(body, &e, "tag_push", event); err != nil {
			return nil, "", err
		}
		// Too early: the pipeline that builds and releases the .deb has
		// only just started.
		return nil, fmt.Sprintf("a tag push (%s) comes before its pipeline has built the .deb; the %s event deploys", clip(strings.TrimPrefix(e.Ref, "refs/tags/")), c.Trigger), nil
	default:
		return nil, fmt.Sprintf("event %s does not deploy", clip(event)), nil
	}

	t.ProjectID, t.ProjectPath = p.ID, p.Path
	if !safeTagRE.MatchString(t.Tag) {
		return nil, fmt.Sprintf("tag %s is not a plain version tag", clip(t.Tag)), nil
	}
	if !c.Tags.MatchString(t.Tag) {
		return nil, fmt.Sprintf("tag %s does not match the configured tag pattern", t.Tag), nil
	}
	v, err := debversion.DebianVersion(t.Tag)
	if err != nil {
		return nil, fmt.Sprintf("tag %s is not a PEP 440 version", t.Tag), nil
	}
	t.Version = v
	if !shaRE.MatchString(t.SHA) {
		t.SHA = ""
	}
	return &t, "", nil
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// unmarshal decodes body into v once: decoding is most of what an ignored
// delivery costs (a second pass for object_kind alone was 40 % of its
// CPU).
func unmarshal(body []byte, v interface{ kind() string }, kind, event string) error {
	if err := json.Unmarshal(body, v); err != nil {
		return badPayload{fmt.Errorf("the body is not the JSON of a %s: %v", event, err)}
	}
	if k := v.kind(); k != kind {
		return badPayload{fmt.Errorf("a %s must have object_kind %q, not %q", event, kind, clip(k))}
	}
	return nil
}

// wrongProject says why a delivery of another project is ignored, or "".
func (c *Config) wrongProject(p projectInfo) string {
	if c.ProjectID != 0 && p.ID != c.ProjectID {
		return fmt.Sprintf("project %d is not the configured project", p.ID)
	}
	if c.ProjectPath != "" {
		if p.Path == "" && c.ProjectID == 0 {
			return "the event names no project path to compare with the configured one; configure [project] id"
		}
		// GitLab paths are case-insensitive.
		if p.Path != "" && !strings.EqualFold(p.Path, c.ProjectPath) {
			return fmt.Sprintf("project %s is not the configured project", clip(p.Path))
		}
	}
	return ""
}

func (c *Config) notTrigger(event string) string {
	return fmt.Sprintf("a %s does not deploy: this receiver deploys on %s events", event, c.Trigger)
}

// clip shortens a payload string for a log line or an answer.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	// Quoting escapes control characters: a payload cannot forge log lines.
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
