package debbuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCIConfigErrors: every bad [tool.debship.ci] value is reported as
// "pyproject.toml:<line>: what; fix".
func TestCIConfigErrors(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{`docker-image = "Acme/App"`, `:9: docker-image "Acme/App" must look like "user/repo"`},
		{`docker-builder = "kaniko"`, `:9: docker-builder "kaniko" must be "buildx" or "buildah"`},
		{`inventory = "/etc/cluster.toml"`, `:9: inventory "/etc/cluster.toml" must be a path inside the project`},
		{`debship-version = "latest"`, `:9: debship version "latest" is not pinned; set debship-version to a released version`},
		{`debship-version = "v1.2.3-4-gabcdef0"`, `:9: debship version "v1.2.3-4-gabcdef0" is a git describe`},
		{`test-command = """a
b"""`, `:9: test-command must be one line`},
		{`build-image = "debian:latest"`, `:9: build-image "debian:latest" is not pinned`},
		{`build-image = "debian"`, `:9: build-image "debian" must be an image with a tag`},
		{`docker-imag = "a/b"`, `:9: unknown key "docker-imag" in [tool.debship.ci]`},
	} {
		dir := t.TempDir()
		doc := "[project]\nname = \"app\"\nversion = \"1.0\"\nauthors = [{name = \"A\", email = \"a@example.org\"}]\n\n[tool.debship]\n\n[tool.debship.ci]\n" + c.line + "\n"
		if err := os.WriteFile(filepath.Join(dir, "pyproject.toml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSpec(dir, Overrides{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.line, err, c.want)
		}
	}
}

func TestCIConfigOK(t *testing.T) {
	dir := t.TempDir()
	doc := `[project]
name = "app"
version = "1.0"
authors = [{name = "A", email = "a@example.org"}]

[tool.debship.ci]
docker-image = "acme/app"
docker-builder = "buildah"
auto-deploy = true
deploy = true
inventory = "deploy/cluster.toml"
debship-version = "v0.2.0"
test-command = "make test"
build-image = "debian:bookworm"
`
	if err := os.WriteFile(filepath.Join(dir, "pyproject.toml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSpec(dir, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	c := s.CI
	if c.DockerImage != "acme/app" || c.DockerBuilder != "buildah" || !*c.AutoDeploy || !*c.Deploy ||
		c.Inventory != "deploy/cluster.toml" || c.DebshipVersion != "v0.2.0" || c.TestCommand != "make test" || c.BuildImage != "debian:bookworm" {
		t.Errorf("%+v", c)
	}
}
