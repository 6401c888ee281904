package ci_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"gitlab.com/debship/debship/ci"
	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/inspect"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// debshipBinary builds cmd/debship once per test run, as the pipeline's
// debship job would install it.
func debshipBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "debship-ci-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "debship")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/debship")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("go build ./cmd/debship: %v", binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// job is the part of a GitLab job the tests read.
type job struct {
	name         string
	Image        string            `yaml:"image"`
	Variables    map[string]string `yaml:"variables"`
	BeforeScript []string          `yaml:"before_script"`
	Script       []string          `yaml:"script"`
	Artifacts    struct {
		Paths   []string `yaml:"paths"`
		Reports struct {
			Dotenv string `yaml:"dotenv"`
		} `yaml:"reports"`
	} `yaml:"artifacts"`
	Needs []struct {
		Job       string `yaml:"job"`
		Artifacts bool   `yaml:"artifacts"`
	} `yaml:"needs"`
}

func jobOf(t *testing.T, pipeline []byte, name string) job {
	t.Helper()
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(pipeline, &doc); err != nil {
		t.Fatal(err)
	}
	n, ok := doc[name]
	if !ok {
		t.Fatalf("no job %q in the pipeline", name)
	}
	var j job
	if err := n.Decode(&j); err != nil {
		t.Fatalf("job %s: %v", name, err)
	}
	j.name = name
	return j
}

// copyTree copies a project, as a fresh clone would have it (no dist/).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (d.Name() == "dist" || d.Name() == "__pycache__" || strings.HasSuffix(d.Name(), ".egg-info") || d.Name() == "build") && rel != "." {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestBuildJobScript runs each build job's script, taken from the
// generated YAML, in a clone of examples/hello-web with debship on PATH
// (what the job's before_script sets up), and checks that the .deb named in
// the dotenv report is the job's target's and lies where the artifacts and
// the Dockerfile expect it. The job for this host's release builds with the
// host's python3, as in its image; the other release's job builds in that
// release's root, which needs root and may take a debootstrap.
func TestBuildJobScript(t *testing.T) {
	testenv.NeedCommand(t, "bash", "git")
	testenv.NeedFile(t, "/usr/bin/python3")
	bin := debshipBinary(t)
	spec, files := generate(t, variants[1]) // with Docker, to check the COPY too
	pipeline := fileOf(t, files, ".gitlab-ci.yml")
	host, _ := debian.Host()
	for _, r := range debian.Releases {
		t.Run(r.Target, func(t *testing.T) {
			build := jobOf(t, pipeline, "build:"+r.Target)
			if len(build.Script) == 0 || build.Artifacts.Reports.Dotenv == "" || build.Image != r.Image() {
				t.Fatalf("build job: %+v", build)
			}
			if r.Suite != host.Suite {
				testenv.NeedLong(t, "builds in another release's root")
				testenv.NeedRoot(t)
			}
			runBuildJob(t, bin, spec, files, build, r.Target, ci.DebPathVariable(r.Target))
		})
	}
}

// runBuildJob runs a build job's script in a fresh clone of a project that
// committed the generated files, and checks the .deb its dotenv report
// names. It returns the clone with the job's artifacts and the report, for
// the jobs that need it.
func runBuildJob(t *testing.T, bin string, spec *debbuild.Spec, files []ci.File, build job, target, envVar string) (dir string, report map[string]string) {
	t.Helper()
	dir = t.TempDir()
	copyTree(t, spec.Dir, dir)
	if _, err := ci.Write(dir, files, false); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"),
		"CI_PROJECT_DIR="+dir,
		"GIT_AUTHOR_NAME=ci", "GIT_AUTHOR_EMAIL=ci@example.org",
		"GIT_COMMITTER_NAME=ci", "GIT_COMMITTER_EMAIL=ci@example.org",
		"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		// This machine has no package index; a CI/CD variable does the
		// same for a project whose runner is offline. The example has no
		// dependencies, and Debian's setuptools builds its wheel.
		"PIP_NO_INDEX=1", "PIP_NO_BUILD_ISOLATION=0",
	)
	run(t, dir, env, "git", "init", "-q")
	run(t, dir, env, "git", "add", ".")
	run(t, dir, env, "git", "commit", "-qm", "clone")

	runScript(t, dir, env, build.name, build.Script)
	report = readDotenv(t, filepath.Join(dir, build.Artifacts.Reports.Dotenv))
	debPath := report[envVar]
	if debPath == "" {
		t.Fatalf("dotenv report has no %s: %v", envVar, report)
	}
	ver, err := spec.TargetDebianVersion(target)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := inspect.ReadPackage(filepath.Join(dir, debPath))
	if err != nil {
		t.Fatalf("the report names %s: %v", debPath, err)
	}
	arch := pkg.Field("Architecture")
	if want := debfile.FileName(spec.Package, ver, arch); path.Base(debPath) != want || pkg.Field("Package") != spec.Package || pkg.Field("Version") != ver || pkg.Target != target {
		t.Errorf("built %s (Package %s, Version %s, for %q), want %s for %s", path.Base(debPath), pkg.Field("Package"), pkg.Field("Version"), pkg.Target, want, target)
	}
	if !underArtifacts(debPath, build.Artifacts.Paths) {
		t.Errorf("%s is not under the build job's artifacts %v", debPath, build.Artifacts.Paths)
	}
	glob := dockerCopyGlob(t, fileOf(t, files, "Dockerfile"))
	if ok, _ := path.Match(glob, debPath); !ok {
		t.Errorf("the Dockerfile copies %s, which does not match the built %s", glob, debPath)
	}
	return dir, report
}

// runScript runs a job's script lines as GitLab's bash does: in one shell
// with -e -o pipefail.
func runScript(t *testing.T, dir string, env []string, name string, lines []string) string {
	t.Helper()
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", strings.Join(lines, "\n"))
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("job %s failed: %v\n%s", name, err, out)
	}
	return string(out)
}

func readDotenv(t *testing.T, p string) map[string]string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("dotenv report: %v", err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m
}

func underArtifacts(p string, paths []string) bool {
	for _, a := range paths {
		if strings.HasPrefix(p, strings.TrimSuffix(a, "/")+"/") || p == a {
			return true
		}
	}
	return false
}

// dockerfile is a Dockerfile as a list of instructions, continuation
// lines joined, comments dropped.
func dockerfile(b []byte) [][2]string {
	var out [][2]string
	var cur string
	for _, l := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(l)
		if cur == "" && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur += strings.TrimSuffix(t, "\\") + " "
			continue
		}
		cur += t
		kw, rest, _ := strings.Cut(cur, " ")
		out = append(out, [2]string{strings.ToUpper(kw), strings.TrimSpace(rest)})
		cur = ""
	}
	return out
}

// dockerCopyGlob is the source of the Dockerfile's COPY of the .deb, with
// the ARG default substituted.
func dockerCopyGlob(t *testing.T, df []byte) string {
	t.Helper()
	args := map[string]string{}
	for _, in := range dockerfile(df) {
		switch in[0] {
		case "ARG":
			if k, v, ok := strings.Cut(in[1], "="); ok {
				args[k] = v
			}
		case "COPY":
			src := strings.Fields(in[1])[0]
			return regexp.MustCompile(`\$\{?(\w+)\}?`).ReplaceAllStringFunc(src, func(m string) string {
				return args[strings.Trim(m, "${}")]
			})
		}
	}
	t.Fatal("the Dockerfile has no COPY")
	return ""
}

// TestDockerfileLint checks what the issue asks of the image: a pinned
// base, a non-root USER, a HEALTHCHECK, EXPOSE of the service port, the
// service as exec-form CMD under tini, and a COPY of exactly the .deb the build job
// leaves in its artifacts, which the docker job passes as DEB.
func TestDockerfileLint(t *testing.T) {
	for _, v := range variants[1:3] {
		spec, files := generate(t, v)
		df := fileOf(t, files, "Dockerfile")
		got := map[string][]string{}
		for _, in := range dockerfile(df) {
			got[in[0]] = append(got[in[0]], in[1])
		}
		if len(got["FROM"]) != 1 {
			t.Fatalf("%s: FROM %v", v.name, got["FROM"])
		}
		from := got["FROM"][0]
		name, tag, hasTag := strings.Cut(from, ":")
		if (!hasTag || tag == "latest" || tag == "") && !strings.Contains(from, "@sha256:") {
			t.Errorf("%s: FROM %s is not pinned", v.name, from)
		}
		if name != "debian" {
			t.Errorf("%s: FROM %s, want a Debian base matching the cluster", v.name, from)
		}
		if u := got["USER"]; len(u) != 1 || u[0] == "root" || u[0] == "0" || u[0] != spec.User {
			t.Errorf("%s: USER %v, want the package's user %s", v.name, u, spec.User)
		}
		if hc := got["HEALTHCHECK"]; len(hc) != 1 || !strings.Contains(hc[0], " CMD [") || !strings.Contains(hc[0], spec.Services[0].HealthPath) {
			t.Errorf("%s: HEALTHCHECK %v", v.name, hc)
		}
		if e := got["EXPOSE"]; len(e) != 1 || e[0] != "8080" {
			t.Errorf("%s: EXPOSE %v", v.name, e)
		}
		// The live test (TestDockerJob) stops the container; this is its
		// cheap half, for -short.
		if e := got["ENTRYPOINT"]; len(e) != 1 || e[0] != `["/usr/bin/tini", "--"]` {
			t.Errorf("%s: ENTRYPOINT %v, want tini, which passes docker stop's SIGTERM to the service", v.name, e)
		}
		var cmd []string
		if c := got["CMD"]; len(c) != 1 || json.Unmarshal([]byte(c[0]), &cmd) != nil || !strings.HasPrefix(cmd[0], spec.VenvDir+"/bin/") {
			t.Errorf("%s: CMD %v is not the service in exec form", v.name, got["CMD"])
		}
		// The COPY takes the build job's artifact: dist/<package>_<version>_<arch>.deb.
		ver, _ := spec.DebianVersion()
		glob := dockerCopyGlob(t, df)
		for _, arch := range []string{"all", debArch()} {
			if ok, _ := path.Match(glob, "dist/"+spec.Package+"_"+ver+"_"+arch+".deb"); !ok {
				t.Errorf("%s: COPY %s does not match the build's .deb", v.name, glob)
			}
		}
		// The image holds the newest target's .deb, on that release.
		pipeline := fileOf(t, files, ".gitlab-ci.yml")
		first := debian.Releases[0]
		build := jobOf(t, pipeline, "build:"+first.Target)
		if !underArtifacts(glob, build.Artifacts.Paths) {
			t.Errorf("%s: COPY %s is outside the build job's artifacts %v", v.name, glob, build.Artifacts.Paths)
		}
		if got["FROM"][0] != first.Image()+"-slim" {
			t.Errorf("%s: FROM %s, want %s-slim: the image's release must be its .deb's", v.name, got["FROM"][0], first.Image())
		}
		docker := jobOf(t, pipeline, "docker")
		if len(docker.Needs) != 1 || docker.Needs[0].Job != build.name || !docker.Needs[0].Artifacts ||
			!strings.Contains(strings.Join(docker.Script, "\n"), `--build-arg "DEB=$DEB_PATH_DEBIAN_13"`) {
			t.Errorf("%s: the docker job does not pass the build job's .deb: %+v", v.name, docker)
		}
		// Only the .deb goes into the build context.
		di := string(fileOf(t, files, ".dockerignore"))
		if !strings.Contains(di, "\n*\n") || !strings.Contains(di, "\n!dist/*.deb\n") {
			t.Errorf("%s: .dockerignore:\n%s", v.name, di)
		}
		if h, err := exec.LookPath("hadolint"); err == nil {
			c := exec.Command(h, "-")
			c.Stdin = bytes.NewReader(df)
			if out, err := c.CombinedOutput(); err != nil {
				t.Errorf("%s: hadolint: %v\n%s", v.name, err, out)
			}
		}
	}
}

func debArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	}
	return runtime.GOARCH
}

// TestCLI runs `debship ci generate` and `debship release` as a user would:
// exit codes, --check's diff, the refusal to overwrite hand edits.
func TestCLI(t *testing.T) {
	bin := debshipBinary(t)
	dir := t.TempDir()
	copyTree(t, filepath.Join(repoRoot(t), "examples/hello-web"), dir)
	debship := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CI_JOB_TOKEN=", "GITLAB_TOKEN=", "CI_API_V4_URL=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	// A development build has no version to pin: say how to give one.
	if _, stderr, code := debship("ci", "generate"); code != 1 || !strings.Contains(stderr, "--debship-version") {
		t.Errorf("unpinned: %d %s", code, stderr)
	}
	if _, stderr, code := debship("ci", "generate", "--debship-version", "v0.1.0"); code != 0 || !strings.Contains(stderr, "created .gitlab-ci.yml") {
		t.Fatalf("generate: %d %s", code, stderr)
	} else if strings.Contains(stderr, "warning") {
		t.Errorf("generate for the example (mode cluster) warns: %s", stderr)
	}
	if _, _, code := debship("ci", "generate", "--check", "--debship-version", "v0.1.0"); code != 0 {
		t.Errorf("--check of fresh files: exit %d", code)
	}
	stdout, stderr, code := debship("ci", "generate", "--check", "--auto-deploy", "--debship-version", "v0.1.0")
	if code != 1 || !strings.Contains(stdout, "-      when: manual") || !strings.Contains(stderr, "stale") {
		t.Errorf("--check of stale files: exit %d\n%s\n%s", code, stdout, stderr)
	}
	p := filepath.Join(dir, ".gitlab-ci.yml")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, append(b, []byte("# my own note\n")...), 0o644)
	if _, stderr, code := debship("ci", "generate", "--debship-version", "v0.1.0"); code != 1 || !strings.Contains(stderr, "refusing to overwrite") || !strings.Contains(stderr, "-# my own note") {
		t.Errorf("hand edit: %d %s", code, stderr)
	}
	if _, stderr, code := debship("ci", "generate", "--force", "--debship-version", "v0.1.0"); code != 0 || !strings.Contains(stderr, "updated .gitlab-ci.yml") {
		t.Errorf("--force: %d %s", code, stderr)
	}
	if _, _, code := debship("ci", "generate", "--no-deploy", "--auto-deploy", "--debship-version", "v0.1.0"); code != 2 {
		t.Errorf("contradicting flags: exit %d, want 2", code)
	}
	// A deploy job for a package in the default mode "systemd", which
	// deploy refuses: one line names pyproject.toml and the fix.
	py := filepath.Join(dir, "pyproject.toml")
	b, _ = os.ReadFile(py)
	os.WriteFile(py, bytes.Replace(b, []byte("mode = \"cluster\"\n"), nil, 1), 0o644)
	warning := "warning: " + py + `: the deploy job deploys to a cluster, which refuses a package built in mode "systemd" (its postinst starts the app outside pacemaker); set mode = "cluster" under [tool.debship]` + "\n"
	if _, stderr, code = debship("ci", "generate", "--debship-version", "v0.1.0"); code != 0 || !strings.Contains(stderr, warning) {
		t.Errorf("generate for mode systemd: %d %s, want the line %q", code, stderr, warning)
	}
	if _, stderr, code = debship("ci", "generate", "--no-deploy", "--debship-version", "v0.1.0"); code != 0 || strings.Contains(stderr, "warning") {
		t.Errorf("generate without a deploy job warns: %d %s", code, stderr)
	}
	if _, stderr, code := debship("release", "--tag", "v1.4.0", "x.deb"); code != 1 || !strings.Contains(stderr, "x.deb") {
		t.Errorf("release of a missing file: %d %s", code, stderr)
	}
	if _, stderr, code := debship("release"); code != 2 || !strings.Contains(stderr, "no .deb given") {
		t.Errorf("release without files: %d %s", code, stderr)
	}
	if out, _, code := debship("release", "--help"); code != 0 || !strings.Contains(out, "CI_JOB_TOKEN") {
		t.Errorf("release --help: %d", code)
	}
	_ = ci.DefaultInventory
}
