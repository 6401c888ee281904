// Package ci writes a project's GitLab pipeline (.gitlab-ci.yml) and, for
// Docker Hub, its Dockerfile and .dockerignore, from the same Spec that
// `debship build` reads, so that a package name or version is never worked
// out twice. Every generated text is an embedded template under
// templates/files/ci/.
package ci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/templates"
)

// Images the generated jobs run in. They are named tags, never "latest":
// a pipeline that worked yesterday should pull the same kind of image today.
const (
	// GoImage builds debship itself once per pipeline (a static binary).
	GoImage = "golang:1.26-bookworm"
	// RunImage runs the small jobs (release, deploy) that only need
	// debship (static, with its own SSH client) and CA certificates.
	RunImage = "debian:bookworm-slim"
	// DockerBaseImage is the base of the generated Dockerfile when the
	// .deb it holds is for no target (else that release's slim image).
	DockerBaseImage = "debian:bookworm-slim"
	// Docker-in-Docker for the buildx job; buildah runs daemonless.
	DockerCLIImage  = "docker:28-cli"
	DockerDindImage = "docker:28-dind"
	BuildahImage    = "quay.io/buildah/stable:v1.39"

	// ModulePath is what the jobs `go install`.
	ModulePath = "gitlab.com/debship/debship/cmd/debship"
	// DefaultInventory is the cluster inventory the deploy job uses.
	DefaultInventory = "cluster.toml"
	// SSHKeyVariable and KnownHostsVariable are the deploy job's GitLab
	// CI/CD variables of type File: the admin user's private key and the
	// nodes' host keys. debship deploy --ssh-key/--known-hosts name them in
	// their errors.
	SSHKeyVariable     = "DEBSHIP_SSH_KEY"
	KnownHostsVariable = "DEBSHIP_KNOWN_HOSTS"
)

// Options are what changes the generated files. Each has a key in
// [tool.debship.ci] and a flag of `debship ci generate`; FromSpec reads the
// former and the command line overrides it field by field.
type Options struct {
	DebshipVersion string // pinned version of debship installed in the jobs
	Docker         bool   // add the Dockerfile, .dockerignore and the docker job
	DockerImage    string // "user/repo"; "" pushes to $DOCKERHUB_USERNAME/<package>
	DockerBuilder  string // "buildx" (default) or "buildah"
	Deploy         bool   // add the deploy job
	AutoDeploy     bool   // deploy tags without a manual click
	Inventory      string // cluster inventory for the deploy job
	TestCommand    string // "" runs pytest when the project has tests
	// BuildImage replaces the build jobs per target by one build job in
	// this image, for the image's own release (its python3).
	BuildImage string
}

// FromSpec returns the options written in [tool.debship.ci], with defaults.
// fallbackVersion is used when the file pins no debship version (normally
// the version of the running debship binary).
func FromSpec(spec *debbuild.Spec, fallbackVersion string) Options {
	c := spec.CI
	o := Options{
		DebshipVersion: c.DebshipVersion,
		DockerImage:    c.DockerImage,
		Docker:         c.DockerImage != "",
		DockerBuilder:  c.DockerBuilder,
		Deploy:         c.Deploy == nil || *c.Deploy,
		AutoDeploy:     c.AutoDeploy != nil && *c.AutoDeploy,
		Inventory:      c.Inventory,
		TestCommand:    c.TestCommand,
		BuildImage:     c.BuildImage,
	}
	if o.DebshipVersion == "" {
		o.DebshipVersion = fallbackVersion
	}
	return o
}

// File is one generated file, relative to the project directory.
type File struct {
	Name    string
	Content []byte
}

// Generate renders the pipeline files for spec. The output only depends on
// spec, o and the presence of tests in the project: the same input gives
// the same bytes.
func Generate(spec *debbuild.Spec, o Options) ([]File, error) {
	d, err := newPipelineData(spec, o)
	if err != nil {
		return nil, err
	}
	var files []File
	add := func(name, tmpl string) error {
		body, err := templates.Render(tmpl, d)
		if err != nil {
			return err
		}
		content, err := withHeader(body, header{
			Source:     "pyproject.toml ([tool.debship.ci]) and the options of the command below",
			Regenerate: d.Regenerate,
			Check:      strings.Replace(d.Regenerate, "generate", "generate --check", 1),
		})
		if err != nil {
			return err
		}
		files = append(files, File{Name: name, Content: content})
		return nil
	}
	if err := add(".gitlab-ci.yml", "ci/gitlab-ci.yml"); err != nil {
		return nil, err
	}
	if d.Docker != nil {
		if err := add("Dockerfile", "ci/Dockerfile"); err != nil {
			return nil, err
		}
		if err := add(".dockerignore", "ci/dockerignore"); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// Warnings are what the user must hear about the generated files: a
// deploy job for a package built in mode "systemd", which debship deploy
// refuses (its postinst would start the app outside pacemaker). Each is
// one line naming the file and the fix.
func Warnings(spec *debbuild.Spec, o Options) []string {
	var w []string
	if o.Deploy && spec.Mode != debfile.ModeCluster {
		w = append(w, fmt.Sprintf("%s: the deploy job deploys to a cluster, which refuses a package built in mode %q (its postinst starts the app outside pacemaker); set mode = \"cluster\" under [tool.debship]",
			spec.PyProject, spec.Mode))
	}
	return w
}

// pipelineData is what the templates see. Values that end up inside YAML
// or a Dockerfile are validated or pre-encoded here, so that no user string
// can change the structure of the file.
type pipelineData struct {
	Package        string
	DebshipVersion string
	ModulePath     string
	GoImage        string
	BuildImage     string
	RunImage       string
	BuildPackages  string // Debian packages the build job installs
	Builds         []buildJob
	Stages         []string
	Test           *testJob
	Docker         *dockerJob
	Deploy         *deployJob
	Regenerate     string // the command that writes these files again
}

// buildJob is one build job: one target in its release's image, or the
// one untargeted job of --build-image.
type buildJob struct {
	Name   string // "build:debian-13", or "build"
	Target string // "debian-13"; "" builds for the image's own release
	Image  string
	// Var is the dotenv variable with the .deb's path: DEB_PATH_DEBIAN_13,
	// so that the jobs that need several build jobs see each one's.
	Var string
}

// DebPathVariable is the dotenv variable in which the build job for target
// hands its .deb's path to the later jobs: DEB_PATH_DEBIAN_13, or DEB_PATH
// for the one untargeted build job.
func DebPathVariable(target string) string {
	if target == "" {
		return "DEB_PATH"
	}
	return "DEB_PATH_" + strings.ToUpper(strings.ReplaceAll(target, "-", "_"))
}

// BuildJobName is the name of the build job for target: "build:debian-13",
// or "build" for the one untargeted job of --build-image. The webhook
// receiver fetches a target's artifacts from the job of this name.
func BuildJobName(target string) string {
	if target == "" {
		return "build"
	}
	return "build:" + target
}

// Args are the debship build arguments that pick the target.
func (b buildJob) Args() string {
	if b.Target == "" {
		return ""
	}
	return " --target " + b.Target
}

// buildJobs are the build jobs: one per target of the spec (default: every
// release debship builds for, so that a cluster on either release finds its
// .deb in the release), or the one job in the image o names.
func buildJobs(spec *debbuild.Spec, o Options) []buildJob {
	if o.BuildImage != "" {
		return []buildJob{{Name: BuildJobName(""), Image: o.BuildImage, Var: DebPathVariable("")}}
	}
	targets := spec.Targets
	if len(targets) == 0 {
		targets = debian.Targets()
	}
	var jobs []buildJob
	for _, tg := range targets {
		r, _ := debian.ByTarget(tg) // LoadSpec checked the names
		jobs = append(jobs, buildJob{
			Name:   BuildJobName(r.Target),
			Target: r.Target,
			Image:  r.Image(),
			Var:    DebPathVariable(r.Target),
		})
	}
	return jobs
}

type testJob struct {
	Command string // one shell line
}

type deployJob struct {
	Inventory string
	Auto      bool
}

type dockerJob struct {
	Build        buildJob // the build job whose .deb the image holds
	Image        string   // "user/repo" or "$DOCKERHUB_USERNAME/<package>"
	Builder      string
	CLIImage     string
	DindImage    string
	BuildahImage string
	BaseImage    string
	DebGlob      string // dist/<package>_*.deb: what the build job leaves
	User         string
	WorkDir      string
	Port         int
	Healthcheck  string // exec-form JSON array
	Cmd          string // exec-form JSON array
}

func newPipelineData(spec *debbuild.Spec, o Options) (*pipelineData, error) {
	if err := debbuild.CIVersionError(o.DebshipVersion); err != nil {
		return nil, fmt.Errorf("%v: the pipeline installs debship with `go install %s@<version>` and needs a released version; pass --debship-version v1.2.3 or set [tool.debship.ci] debship-version", err, ModulePath)
	}
	// Flags bypass LoadSpec's validation of [tool.debship.ci], so check
	// the merged options the same way.
	probe := debbuild.CIConfig{
		DockerImage:   o.DockerImage,
		DockerBuilder: o.DockerBuilder,
		Inventory:     o.Inventory,
		TestCommand:   o.TestCommand,
		BuildImage:    o.BuildImage,
	}
	if err := debbuild.ValidateCIConfig(&probe); err != nil {
		return nil, err
	}
	builds := buildJobs(spec, o)
	d := &pipelineData{
		Package:        spec.Package,
		DebshipVersion: o.DebshipVersion,
		ModulePath:     ModulePath,
		GoImage:        GoImage,
		// The tests run in the image of the first build job, the newest
		// release the project targets.
		BuildImage: builds[0].Image,
		Builds:     builds,
		RunImage:   RunImage,
		// python3-pip: the build runs the system pip against the new venv;
		// git: SOURCE_DATE_EPOCH defaults to the last commit's time.
		BuildPackages: "ca-certificates git python3 python3-pip python3-venv",
		Regenerate:    regenerateCommand(o),
	}
	if cmd := strings.TrimSpace(o.TestCommand); cmd != "" {
		d.Test = &testJob{Command: cmd}
	} else if HasTests(spec.Dir) {
		d.Test = &testJob{Command: "python -m pytest"}
	}
	if o.Docker || o.DockerImage != "" {
		dj, err := newDockerJob(spec, o, builds[0])
		if err != nil {
			return nil, err
		}
		d.Docker = dj
	}
	if o.Deploy {
		inv := o.Inventory
		if inv == "" {
			inv = DefaultInventory
		}
		d.Deploy = &deployJob{Inventory: inv, Auto: o.AutoDeploy}
	}
	if d.Test != nil {
		d.Stages = append(d.Stages, "test")
	}
	d.Stages = append(d.Stages, "build")
	if d.Docker != nil {
		d.Stages = append(d.Stages, "docker")
	}
	d.Stages = append(d.Stages, "release")
	if d.Deploy != nil {
		d.Stages = append(d.Stages, "deploy")
	}
	return d, nil
}

func newDockerJob(spec *debbuild.Spec, o Options, build buildJob) (*dockerJob, error) {
	if len(spec.Services) == 0 {
		return nil, fmt.Errorf("%s: the Docker image runs the package's service, but there is none; add a [[tool.debship.service]] with exec and port, or drop --docker", spec.PyProject)
	}
	// One process per container: the first service is the image's command.
	svc := spec.Services[0]
	if svc.Unit != "" {
		return nil, fmt.Errorf("%s: service %s is a unit file, so debship cannot tell the image's command; use exec = \"...\" for it, or drop --docker", spec.PyProject, svc.Name)
	}
	if svc.Port == 0 {
		return nil, fmt.Errorf("%s: service %s has no port, which the image needs for EXPOSE and HEALTHCHECK; add port = 8080 (its listening port) to the [[tool.debship.service]]", spec.PyProject, svc.Name)
	}
	if spec.User == "" {
		return nil, fmt.Errorf("%s: the package has no system user to run the container as; set [tool.debship] user", spec.PyProject)
	}
	image := o.DockerImage
	if image == "" {
		image = "$DOCKERHUB_USERNAME/" + spec.Package
	}
	builder := o.DockerBuilder
	if builder == "" {
		builder = "buildx"
	}
	// The healthcheck uses the venv's own interpreter: the slim base image
	// has no curl, and the package already depends on python3.
	var probe string
	if svc.HealthPath != "" {
		probe = fmt.Sprintf("import urllib.request; urllib.request.urlopen('http://127.0.0.1:%d%s', timeout=2)", svc.Port, svc.HealthPath)
	} else {
		probe = fmt.Sprintf("import socket; socket.create_connection(('127.0.0.1', %d), timeout=2).close()", svc.Port)
	}
	hc, err := json.Marshal([]string{spec.VenvDir + "/bin/python3", "-c", probe})
	if err != nil {
		return nil, err
	}
	// systemd's ExecStart= splits on white space too; the exec form
	// starts the service with no shell between it and tini, which passes
	// it the SIGTERM of `docker stop`.
	cmd, err := json.Marshal(strings.Fields(svc.Exec))
	if err != nil {
		return nil, err
	}
	// The image holds the first build job's .deb, on a slim image of its
	// release.
	base := DockerBaseImage
	if r, ok := debian.ByTarget(build.Target); ok {
		base = r.Image() + "-slim"
	}
	return &dockerJob{
		Build:        build,
		Image:        image,
		Builder:      builder,
		CLIImage:     DockerCLIImage,
		DindImage:    DockerDindImage,
		BuildahImage: BuildahImage,
		BaseImage:    base,
		DebGlob:      "dist/" + spec.Package + "_*.deb",
		User:         spec.User,
		WorkDir:      spec.StateDir(),
		Port:         svc.Port,
		Healthcheck:  string(hc),
		Cmd:          string(cmd),
	}, nil
}

// regenerateCommand is the command line, written into each file's header,
// that produces the file again: the options that differ from the defaults,
// so `debship ci generate --check` can be run the same way.
func regenerateCommand(o Options) string {
	args := []string{"debship ci generate"}
	if o.Docker && o.DockerImage == "" {
		args = append(args, "--docker")
	}
	if o.DockerImage != "" {
		args = append(args, "--docker-image "+o.DockerImage)
	}
	if o.DockerBuilder != "" && o.DockerBuilder != "buildx" {
		args = append(args, "--docker-builder "+o.DockerBuilder)
	}
	if !o.Deploy {
		args = append(args, "--no-deploy")
	} else if o.AutoDeploy {
		args = append(args, "--auto-deploy")
	}
	if o.Inventory != "" && o.Inventory != DefaultInventory && o.Deploy {
		args = append(args, "--inventory "+o.Inventory)
	}
	args = append(args, "--debship-version "+o.DebshipVersion)
	return strings.Join(args, " ")
}

// HasTests reports whether the project looks like it has pytest-style
// tests: a tests/ or test/ directory, a conftest.py or pytest.ini, or
// test_*.py / *_test.py files at the top.
func HasTests(dir string) bool {
	for _, d := range []string{"tests", "test"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err == nil && fi.IsDir() {
			return true
		}
	}
	for _, f := range []string{"conftest.py", "pytest.ini"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	for _, pat := range []string{"test_*.py", "*_test.py"} {
		if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
			return true
		}
	}
	return false
}

// InventoryName is the inventory file the deploy job uses.
func InventoryName(o Options) string {
	if o.Inventory != "" {
		return o.Inventory
	}
	return DefaultInventory
}

// InventoryPath is InventoryName inside the project directory.
func InventoryPath(dir string, o Options) string { return filepath.Join(dir, InventoryName(o)) }
