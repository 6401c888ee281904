// Package webhooktest holds GitLab webhook payloads for tests of the
// receiver (ci/webhook) and of whatever drives it end to end (the lab
// deploy test): the Pipeline, Release, Tag Push and Job Hook payloads of
// events/, written from GitLab's documentation (events/README.md names the
// pages), for project 42 "acme/hello-web" and tag v1.4.0. Tests change the
// fields their case is about. GitLab as the sender of these payloads is
// gitlabtest.Hook.
package webhooktest

import (
	"crypto/sha1"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed events/*.json
var events embed.FS

// The fixtures' project.
const (
	ProjectID   = 42
	ProjectPath = "acme/hello-web"
)

// Config is the part of a receiver's webhook.toml for the fixtures'
// project: its token in the file "token" beside the config, pipeline
// events, GitLab at {{GITLAB}}. It ends in the [gitlab] table, so that a
// test may add keys to it.
const Config = `[token]
file = "token"

[project]
id = 42
path = "acme/hello-web"

[trigger]
event = "pipeline"

[gitlab]
url = "{{GITLAB}}"
`

// Fixture names, with the X-Gitlab-Event header each is sent with.
var Events = map[string]string{
	"pipeline": "Pipeline Hook",
	"release":  "Release Hook",
	"tag_push": "Tag Push Hook",
	"job":      "Job Hook",
}

// Event returns the fixture name ("pipeline", "release", "tag_push",
// "job") with fields set by dotted path ("object_attributes.ref",
// "project.id"); a path into a missing object is an error.
func Event(name string, set map[string]any) ([]byte, error) {
	b, err := events.ReadFile("events/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("webhook fixture %s: %w", name, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("webhook fixture %s: %w", name, err)
	}
	for path, v := range set {
		parts := strings.Split(path, ".")
		m := doc
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("webhook fixture %s has no object %s (setting %s)", name, p, path)
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	return json.Marshal(doc)
}

// Pipeline is a successful tag pipeline for tag in the given project: the
// pipeline and commit of TagRun(tag).
func Pipeline(projectID int64, projectPath, tag string) []byte {
	r := TagRun(tag)
	b, err := Event("pipeline", map[string]any{
		"object_attributes.ref": tag, "project.id": projectID, "project.path_with_namespace": projectPath,
		"object_attributes.id": r.Pipeline, "object_attributes.sha": r.SHA, "commit.id": r.SHA,
	})
	if err != nil {
		panic(err) // the embedded fixture is known to have these fields
	}
	return b
}

// Run is the tag pipeline of a tag as these fixtures tell it: its ID, the
// commit it ran for (the tag's) and its job "release". A receiver asks
// GitLab about them before it deploys, so a fake GitLab must hold the
// same: gitlabtest.Server.AddPipeline.
type Run struct {
	Pipeline int64
	SHA      string
	Job      int64 // the job "release" of job.json
}

// TagRun is the run of v1.4.0 in events/ (pipeline 3101 at commit
// 9f2c4e1…, job 9003), and for any other tag one derived from its name, so
// that the deliveries of several tags name different pipelines.
func TagRun(tag string) Run {
	if tag == "v1.4.0" {
		return Run{Pipeline: 3101, SHA: "9f2c4e1b7a3d5c8e0f1a2b3c4d5e6f708192a3b4", Job: 9003}
	}
	sum := sha1.Sum([]byte("webhooktest commit of " + tag))
	n := int64(binary.BigEndian.Uint32(sum[:4]))
	return Run{Pipeline: 1_000_000 + n, SHA: hex.EncodeToString(sum[:]), Job: 10_000_000_000 + n}
}
