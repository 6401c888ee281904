package ci

import "gitlab.com/debship/debship/templates"

// Schema of GitLab's .gitlab-ci.yml that debship's own pipeline fetches for
// its tests (the copy in ../shared/schemas/gitlab-ci.json; see SOURCES.md
// there): pinned by commit and checked by SHA-256.
const (
	SchemaURL    = "https://raw.githubusercontent.com/firecow/gitlab-ci-local/1e050e3be7f43b8aa366d993594f649de59894f6/src/schema.json"
	SchemaSHA256 = "7568b544b4b95102f21e9fd89d769d54ee6f86b35d2fbb7f7b947d6fa9fc4dda"
)

// RepoPipeline renders debship's own .gitlab-ci.yml (the file at the root
// of this repository): vet, test, build debship and its .deb, release on
// tags. It is generated like a user's pipeline, with the same header and
// checksum, and a test keeps the committed file equal to it.
func RepoPipeline() ([]byte, error) {
	body, err := templates.Render("ci/debship-gitlab-ci.yml", map[string]string{
		"GoImage":      GoImage,
		"SchemaURL":    SchemaURL,
		"SchemaSHA256": SchemaSHA256,
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
