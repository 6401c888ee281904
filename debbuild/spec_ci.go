package debbuild

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// CIConfig is [tool.debship.ci]: options of the generated GitLab pipeline.
// Every key is optional and a command-line flag of `debship ci generate`
// overrides it. It lives here because the Spec is the one reader of
// pyproject.toml; the ci package owns what the values mean.
type CIConfig struct {
	DockerImage    string `toml:"docker-image"`    // "user/repo" on Docker Hub; enables the docker job
	DockerBuilder  string `toml:"docker-builder"`  // "buildx" (default) or "buildah"
	AutoDeploy     *bool  `toml:"auto-deploy"`     // deploy without a manual click
	Deploy         *bool  `toml:"deploy"`          // false omits the deploy job
	Inventory      string `toml:"inventory"`       // cluster.toml path used by the deploy job
	DebshipVersion string `toml:"debship-version"` // pinned debship version installed in jobs
	TestCommand    string `toml:"test-command"`    // overrides the detected test command
	BuildImage     string `toml:"build-image"`     // one build job in this image instead of one per target
}

var (
	dockerImageRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+$`)
	// A job image with a registry, a path and a tag or digest, e.g.
	// "debian:bookworm" or "registry.example.org/base/debian:12@sha256:...".
	// The characters are limited so that the value is safe unquoted in YAML.
	jobImageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*(?:@sha256:[0-9a-f]{64})?$`)
	// The inventory path is written into a shell command inside YAML; plain
	// path characters keep it safe in both without quoting rules to get wrong.
	inventoryRE = regexp.MustCompile(`^[A-Za-z0-9._+-][A-Za-z0-9._/+-]*$`)
)

// CIVersionError explains why a debship version cannot be pinned in a
// pipeline, or is nil when it can. The generated jobs run
// `go install gitlab.com/debship/debship/cmd/debship@<version>`, so the
// version must name one immutable thing: a release tag (v1.2.3, v1.2.3-rc.1)
// or a Go pseudo-version. "latest", a branch, "dev" or a `git describe` of
// a work tree would make two runs of one pipeline install different code.
func CIVersionError(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("no debship version to pin")
	case v == "latest" || v == "dev" || v == "master" || v == "main":
		return fmt.Errorf("debship version %q is not pinned", v)
	case strings.HasSuffix(v, "-dirty"):
		return fmt.Errorf("debship version %q was built from a modified work tree", v)
	case describeRE.MatchString(v):
		return fmt.Errorf("debship version %q is a git describe of an untagged commit", v)
	case !semverRE.MatchString(v):
		return fmt.Errorf("debship version %q is not a release version such as v1.2.3", v)
	}
	return nil
}

var (
	semverRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	// "v1.2.3-4-gabcdef0": four commits past v1.2.3, which no module proxy serves.
	describeRE = regexp.MustCompile(`-[0-9]+-g[0-9a-f]{7,}$`)
)

func (c *CIConfig) validate(line func(string) string) error {
	if c.DockerImage != "" && !dockerImageRE.MatchString(c.DockerImage) {
		return fmt.Errorf("%s: docker-image %q must look like \"user/repo\" (lower case, no tag)", line("docker-image"), c.DockerImage)
	}
	switch c.DockerBuilder {
	case "", "buildx", "buildah":
	default:
		return fmt.Errorf("%s: docker-builder %q must be \"buildx\" or \"buildah\"", line("docker-builder"), c.DockerBuilder)
	}
	if c.Inventory != "" {
		if !inventoryRE.MatchString(c.Inventory) || path.IsAbs(c.Inventory) || strings.Contains(c.Inventory, "..") {
			return fmt.Errorf("%s: inventory %q must be a path inside the project such as \"cluster.toml\" or \"deploy/cluster.toml\" (letters, digits, '.', '_', '+', '-', '/')", line("inventory"), c.Inventory)
		}
	}
	if c.DebshipVersion != "" {
		if err := CIVersionError(c.DebshipVersion); err != nil {
			return fmt.Errorf("%s: %v; set debship-version to a released version such as \"v0.1.0\"", line("debship-version"), err)
		}
	}
	if strings.ContainsAny(c.TestCommand, "\n\r") {
		return fmt.Errorf("%s: test-command must be one line; put longer test steps in a script and name it here", line("test-command"))
	}
	if c.BuildImage != "" && (!jobImageRE.MatchString(c.BuildImage) || !strings.Contains(c.BuildImage, ":")) {
		return fmt.Errorf("%s: build-image %q must be an image with a tag, such as \"debian:bookworm\"", line("build-image"), c.BuildImage)
	}
	if c.BuildImage != "" && strings.HasSuffix(c.BuildImage, ":latest") {
		return fmt.Errorf("%s: build-image %q is not pinned; name a release tag such as \"debian:bookworm\"", line("build-image"), c.BuildImage)
	}
	return nil
}

// ValidateCIConfig checks CI options that came from the command line rather
// than from pyproject.toml; errors name the flag (the keys and the flags of
// `debship ci generate` have the same names).
func ValidateCIConfig(c *CIConfig) error {
	return c.validate(func(key string) string { return "--" + key })
}
