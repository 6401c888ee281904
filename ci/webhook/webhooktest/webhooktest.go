// Package webhooktest holds GitLab webhook payloads for tests of the
// receiver (ci/webhook) and of whatever drives it end to end (the lab
// deploy test): the Pipeline, Release, Tag Push and Job Hook payloads of
// events/, written from GitLab's documentation (events/README.md names the
// pages), for project 42 "acme/hello-web" and tag v1.4.0. Tests change the
// fields their case is about. GitLab as the sender of these payloads is
// gitlabtest.Hook.
package webhooktest

import (
	"embed"
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

// Pipeline is a successful tag pipeline for tag in the given project.
func Pipeline(projectID int64, projectPath, tag string) []byte {
	b, err := Event("pipeline", map[string]any{
		"object_attributes.ref": tag, "project.id": projectID, "project.path_with_namespace": projectPath,
	})
	if err != nil {
		panic(err) // the embedded fixture is known to have these fields
	}
	return b
}
