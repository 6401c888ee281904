package debbuild

import (
	"fmt"
	"regexp"
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
	BuildImage     string `toml:"build-image"`     // image of the build job, default debian:bookworm
}

var dockerImageRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+$`)

func (c *CIConfig) validate(line func(string) string) error {
	if c.DockerImage != "" && !dockerImageRE.MatchString(c.DockerImage) {
		return fmt.Errorf("%s: docker-image %q must look like \"user/repo\" (lower case, no tag)", line("docker-image"), c.DockerImage)
	}
	switch c.DockerBuilder {
	case "", "buildx", "buildah":
	default:
		return fmt.Errorf("%s: docker-builder %q must be \"buildx\" or \"buildah\"", line("docker-builder"), c.DockerBuilder)
	}
	return nil
}
