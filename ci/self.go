package ci

import "gitlab.com/debship/debship/templates"

// SchemaSHA256 pins GitLab's .gitlab-ci.yml schema vendored in
// ci/testdata/gitlab-ci-schema (SOURCES.md there says where it came from):
// the schema tests refuse a copy that differs, so a refresh is deliberate.
const SchemaSHA256 = "7568b544b4b95102f21e9fd89d769d54ee6f86b35d2fbb7f7b947d6fa9fc4dda"

// RepoPipeline renders debship's own .gitlab-ci.yml (the file at the root
// of this repository): vet, test, build debship and its .deb, release on
// tags. It is generated like a user's pipeline, with the same header and
// checksum, and a test keeps the committed file equal to it.
func RepoPipeline() ([]byte, error) {
	body, err := templates.Render("ci/debship-gitlab-ci.yml", map[string]string{
		"GoImage": GoImage,
	})
	if err != nil {
		return nil, err
	}
	return withHeader(body, header{
		Source:     "templates/files/ci/debship-gitlab-ci.yml",
		Regenerate: "go test ./ci -run TestRepoPipeline -update",
		Check:      "go test ./ci -run TestRepoPipeline",
	})
}
