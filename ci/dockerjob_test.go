package ci_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/ci"
	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/debroot"
	"gitlab.com/debship/debship/internal/rootfs"
	"gitlab.com/debship/debship/internal/testenv"
)

// TestDockerJob runs the generated docker job as a tag pipeline would,
// after its build job, and checks what a user sees on Docker Hub and with
// `docker run`: the image is built from the generated Dockerfile with the
// .deb the build job made, pushed with the job's credentials under the
// tags <version>, <major>.<minor> and latest, and, run, it answers its
// health check and serves as the package's user.
//
// The job is the buildah variant (--docker-builder buildah): its script
// runs here as written, with Debian's buildah. The default buildx job needs
// a Docker daemon with BuildKit (docker-in-docker); podman (podman-docker)
// has no `docker buildx create` nor `build --push`, so a shim would have
// to rewrite those lines, and the test would prove the shim. Its
// Dockerfile is the same file.
//
// Nothing but Debian's mirror (debootstrap, and apt-get in the Dockerfile's
// RUN) and loopback is reached: the base image debian:<release>-slim is
// imported from a cached debootstrap --variant=minbase root (how Debian's
// official images are made, less their slimming), and Docker Hub is a
// docker-registry on loopback (see registry).
func TestDockerJob(t *testing.T) {
	testenv.NeedLong(t, "builds and runs a container image from a Debian root")
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "bash", "git", "tar", "debootstrap", "buildah", "podman", "runc",
		"docker-registry", "htpasswd", "curl", "nsenter")
	start := time.Now()
	bin := debshipBinary(t)
	spec, files := generate(t, variants[2]) // docker-buildah
	pipeline := fileOf(t, files, ".gitlab-ci.yml")
	docker := jobOf(t, pipeline, "docker")
	if len(docker.Needs) != 1 {
		t.Fatalf("the docker job needs %+v, want its build job", docker.Needs)
	}
	build := jobOf(t, pipeline, docker.Needs[0].Job)
	target := strings.TrimPrefix(build.name, "build:")
	rel, ok := debian.ByTarget(target)
	if !ok {
		t.Fatalf("the docker job needs %s, which builds for no release", build.name)
	}

	c := newContainers(t)
	c.importBase(t, dockerFrom(t, fileOf(t, files, "Dockerfile")), rel.Suite)
	t.Logf("%5.1fs base image imported", time.Since(start).Seconds())
	dir, report := runBuildJob(t, bin, spec, files, build, target, ci.DebPathVariable(target))
	t.Logf("%5.1fs build job done", time.Since(start).Seconds())

	const user = "debship-ci"
	token := randomToken(t)
	reg := startRegistry(t, user, token)
	env := slices.Concat(c.env, reg.env, tagPipeline(t, dir, "v"+spec.Version),
		[]string{"DOCKERHUB_USERNAME=" + user, "DOCKERHUB_TOKEN=" + token})
	for k, v := range report { // the build job's dotenv report
		env = append(env, k+"="+v)
	}
	env = append(env, jobVariables(docker, env)...)
	out := runScript(t, dir, env, docker.name, slices.Concat(docker.BeforeScript, docker.Script))
	if strings.Contains(out, token) {
		t.Errorf("the docker job's output shows DOCKERHUB_TOKEN:\n%s", out)
	}
	if r := reg.refusedDestinations(); len(r) > 0 {
		t.Errorf("the docker job tried to reach %v besides the registry", r)
	}
	t.Logf("%5.1fs docker job done", time.Since(start).Seconds())

	image := lookup(env, "DOCKER_IMAGE")
	id := strings.TrimSpace(c.podman(t, "image", "inspect", "--format", "{{.Id}}", "docker.io/"+image+":"+spec.Version))
	checkPushed(t, reg, spec, image, "sha256:"+id, lookup(env, "CI_COMMIT_SHA"))
	checkServes(t, c, spec, "docker.io/"+image+":"+spec.Version)
	t.Logf("%5.1fs image checked and run", time.Since(start).Seconds())
}

// tagPipeline is what GitLab sets for the pipeline of tag in the clone dir.
func tagPipeline(t *testing.T, dir, tag string) []string {
	t.Helper()
	sha := strings.TrimSpace(run(t, dir, nil, "git", "rev-parse", "HEAD"))
	return []string{"CI=true", "GITLAB_CI=true", "CI_PROJECT_DIR=" + dir, "CI_COMMIT_TAG=" + tag,
		"CI_COMMIT_SHA=" + sha, "CI_COMMIT_SHORT_SHA=" + sha[:8], "CI_DEFAULT_BRANCH=main"}
}

// jobVariables are the job's variables: as GitLab does, a $NAME in a value
// is replaced by that variable of env.
func jobVariables(j job, env []string) []string {
	var out []string
	for k, v := range j.Variables {
		out = append(out, k+"="+os.Expand(v, func(name string) string { return lookup(env, name) }))
	}
	return out
}

// lookup is the last value of name in env, as exec uses it.
func lookup(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// dockerFrom is the image the Dockerfile builds FROM.
func dockerFrom(t *testing.T, df []byte) string {
	t.Helper()
	for _, in := range dockerfile(df) {
		if in[0] == "FROM" {
			return in[1]
		}
	}
	t.Fatal("the Dockerfile has no FROM")
	return ""
}

// checkPushed reads the image back from the registry as its owner would
// see it on Docker Hub: every tag of a release, each the image built here,
// labelled with the version and commit, and keeping the Dockerfile's user
// and HEALTHCHECK (which an OCI-format image would drop).
func checkPushed(t *testing.T, reg *registry, spec *debbuild.Spec, image, id, sha string) {
	t.Helper()
	var tags struct{ Tags []string }
	reg.getJSON(t, "/v2/"+image+"/tags/list", "", &tags)
	major, minor, _ := strings.Cut(spec.Version, ".")
	minor, _, _ = strings.Cut(minor, ".")
	want := []string{major + "." + minor, spec.Version, "latest"}
	slices.Sort(tags.Tags)
	if !slices.Equal(tags.Tags, want) {
		t.Errorf("the registry has the tags %v of %s, want %v", tags.Tags, image, want)
	}
	const manifestTypes = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
	var digests []string
	var manifest struct{ Config struct{ Digest string } }
	for _, tag := range want {
		h := reg.getJSON(t, "/v2/"+image+"/manifests/"+tag, manifestTypes, &manifest)
		digests = append(digests, h.Get("Docker-Content-Digest"))
		if manifest.Config.Digest != id {
			t.Errorf("%s:%s on the registry is the image %s, want the one built, %s", image, tag, manifest.Config.Digest, id)
		}
	}
	if len(slices.Compact(slices.Clone(digests))) != 1 {
		t.Errorf("the tags %v point at different manifests %v", want, digests)
	}
	var cfg struct {
		Config struct {
			User        string
			Labels      map[string]string
			Healthcheck *struct{ Test []string }
		}
	}
	reg.getJSON(t, "/v2/"+image+"/blobs/"+manifest.Config.Digest, "", &cfg)
	c := cfg.Config
	if c.User != spec.User || c.Labels["org.opencontainers.image.version"] != spec.Version ||
		c.Labels["org.opencontainers.image.revision"] != sha || c.Healthcheck == nil || len(c.Healthcheck.Test) == 0 {
		t.Errorf("the pushed image's config: user %q, labels %v, healthcheck %+v; want user %s, version %s, revision %s and a HEALTHCHECK",
			c.User, c.Labels, c.Healthcheck, spec.User, spec.Version, sha)
	}
}

// checkServes runs the image as `docker run` would and asks the app:
// the image's own HEALTHCHECK passes, /healthz answers with the version,
// and / counts a request in the state directory, which the package's
// user can write to.
func checkServes(t *testing.T, c *containers, spec *debbuild.Spec, image string) {
	t.Helper()
	// No network of its own: podman's bridge would add firewall rules on
	// this host, and the port would be the host's. The test reaches the
	// app in the container's network namespace instead.
	id := strings.TrimSpace(c.podman(t, "run", "--detach", "--network", "none", image))
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := c.command("logs", id).CombinedOutput()
			t.Logf("the container's output:\n%s", logs)
		}
		c.command("rm", "--force", "--time", "0", id).Run()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		// What `docker run` schedules every 30 s (the timer podman would
		// use is systemd's, absent here), run once.
		out, err := c.command("healthcheck", "run", id).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the image's HEALTHCHECK still fails after 30 s: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pid := strings.TrimSpace(c.podman(t, "inspect", "--format", "{{.State.Pid}}", id))
	port := strconv.Itoa(spec.Services[0].Port)
	get := func(path string) string {
		cmd := exec.Command("nsenter", "--net=/proc/"+pid+"/ns/net", "curl", "-fsS", "--max-time", "10", "http://127.0.0.1:"+port+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GET %s in the container: %v\n%s", path, err, out)
		}
		return string(out)
	}
	if got, want := get(spec.Services[0].HealthPath), "ok "+spec.Version+"\n"; got != want {
		t.Errorf("GET %s in the container: %q, want %q", spec.Services[0].HealthPath, got, want)
	}
	var index struct{ Requests int }
	if body := get("/"); json.Unmarshal([]byte(body), &index) != nil || index.Requests != 1 {
		t.Errorf("GET / in the container: %s, want the first request counted", body)
	}
	checkStops(t, c, id)
}

// checkStops stops the container as `docker stop` does: SIGTERM, then
// SIGKILL after 10 s. The app must end on the SIGTERM, as under its
// systemd unit: a rolling update waits for every stop, and a SIGKILL
// cuts off the requests in flight.
func checkStops(t *testing.T, c *containers, id string) {
	t.Helper()
	start := time.Now()
	c.podman(t, "stop", "--time", "10", id)
	took := time.Since(start)
	code := strings.TrimSpace(c.podman(t, "inspect", "--format", "{{.State.ExitCode}}", id))
	t.Logf("podman stop: %.1f s, exit %s", took.Seconds(), code)
	if took > 5*time.Second || code == "137" {
		t.Errorf("podman stop took %.1f s and the container exited %s: the app ignored SIGTERM and was killed", took.Seconds(), code)
	}
}

// containers is a storage and a configuration of buildah and podman of
// this test's own (CONTAINERS_STORAGE_CONF and friends), so that it neither
// reads nor leaves anything in the host's /var/lib/containers. What this
// machine needs (a VM as root, no systemd as PID 1, cgroup v1 and v2
// mounted side by side) is in containers.conf.
type containers struct {
	env []string
}

func newContainers(t *testing.T) *containers {
	t.Helper()
	dir := t.TempDir()
	// The storage may hold mounts (a container's /dev/shm) after a failure.
	t.Cleanup(func() { rootfs.UnmountBelow(dir) })
	q := func(p string) string { return strconv.Quote(filepath.Join(dir, p)) }
	// vfs: the job's own STORAGE_DRIVER; both must agree on the storage.
	writeFile(t, filepath.Join(dir, "storage.conf"), fmt.Sprintf(
		"[storage]\ndriver = \"vfs\"\ngraphroot = %s\nrunroot = %s\n", q("storage"), q("run")))
	// Short names resolve on Docker Hub, as in the job's image
	// (quay.io/buildah/stable lists docker.io among its registries).
	writeFile(t, filepath.Join(dir, "registries.conf"), "unqualified-search-registries = [\"docker.io\"]\n")
	writeFile(t, filepath.Join(dir, "containers.conf"), `[containers]
# podman raises a container's RLIMIT_NOFILE and RLIMIT_NPROC to 1048576 and
# 4194304 as root, above conmon's hard limits in this VM: runc fails with
# "error setting rlimit type 6: operation not permitted". Docker's own
# default is 1024 open files.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
# Nothing of systemd: PID 1 is not systemd, and there is no journald.
cgroup_manager = "cgroupfs"
events_logger = "file"
# crun refuses the cgroup v1 hierarchy with cgroup2 mounted beside it
# ("cgroups in hybrid mode not supported"); runc runs in it.
runtime = "runc"
tmp_dir = `+q("libpod")+"\n")
	c := &containers{env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf"),
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		// buildah login writes the credentials here, not in /run.
		"REGISTRY_AUTH_FILE=" + filepath.Join(dir, "auth.json"),
	}}
	return c
}

func (c *containers) command(args ...string) *exec.Cmd {
	cmd := exec.Command("podman", args...)
	cmd.Env = c.env
	return cmd
}

// podman runs podman and returns its standard output.
func (c *containers) podman(t *testing.T, args ...string) string {
	t.Helper()
	cmd := c.command(args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// importBase makes the image name (the Dockerfile's FROM, a Docker Hub
// name) from a minbase root of suite, cached like the tests' clean roots,
// with the environment and command of Debian's official images.
func (c *containers) importBase(t *testing.T, name, suite string) {
	t.Helper()
	base := rootfs.Base{Dir: filepath.Join(debroot.CacheDir, suite+"-minbase"), Suite: suite}
	if err := base.Ensure(t.Context(), rootfs.Runner{}, nil, nil); err != nil {
		t.Fatalf("debootstrap --variant=minbase %s: %v", suite, err)
	}
	release, err := base.Use()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if !strings.Contains(name, "/") { // an official image's short name
		name = "docker.io/library/" + name
	}
	tar := exec.Command("tar", "--numeric-owner", "-C", base.Dir, "-c", ".")
	imp := c.command("import", "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--change", `CMD ["bash"]`, "-", name)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var tarErr bytes.Buffer
	tar.Stderr = &tarErr
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := imp.CombinedOutput()
	if werr := tar.Wait(); werr != nil {
		t.Fatalf("tar of %s: %v\n%s", base.Dir, werr, tarErr.Bytes())
	}
	if err != nil {
		t.Fatalf("podman import %s: %v\n%s", name, err, out)
	}
}
