package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"gitlab.com/debship/debship/ci"
	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
	"gitlab.com/debship/debship/cluster/lab/labtest"
	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testenv"
)

// gitlabJob is the part of a generated job that a runner executes.
type gitlabJob struct {
	Variables    map[string]string `yaml:"variables"`
	BeforeScript []string          `yaml:"before_script"`
	Script       []string          `yaml:"script"`
}

// generatedDeployJob is the deploy job of the pipeline `debship ci
// generate` writes for examples/hello-web.
func generatedDeployJob(t *testing.T) gitlabJob {
	t.Helper()
	spec, err := debbuild.LoadSpec("../../examples/hello-web", debbuild.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	o := ci.FromSpec(spec, "v0.1.0")
	o.Deploy = true
	files, err := ci.Generate(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Name != ".gitlab-ci.yml" {
			continue
		}
		var doc map[string]yaml.Node
		if err := yaml.Unmarshal(f.Content, &doc); err != nil {
			t.Fatal(err)
		}
		n, ok := doc["deploy"]
		if !ok {
			t.Fatal("the generated pipeline has no deploy job")
		}
		var j gitlabJob
		if err := n.Decode(&j); err != nil {
			t.Fatalf("deploy job: %v", err)
		}
		return j
	}
	t.Fatal("no .gitlab-ci.yml generated")
	return gitlabJob{}
}

// TestDeployJobLab runs the generated deploy job's script against the lab
// as a GitLab runner would: in a project directory with debship where the
// debship job leaves it, the .deb where the build job leaves it, a
// committed cluster.toml that names no key, and the two CI/CD variables of
// type File. Without either variable the job fails with one sentence and
// nothing changes; with both it deploys a new version to every node.
//
// It starts from the cluster as cluster apply --package 1.0.0 leaves it.
func TestDeployJobLab(t *testing.T) {
	testenv.NeedLong(t, "boots the lab") // before the builds, which -short would waste
	testenv.NeedCommand(t, "bash", "go")
	job := generatedDeployJob(t)
	v5 := labtest.BuildExample(t, labtest.Release(t), "5.0.0", nil)
	dir := t.TempDir()
	bin := filepath.Join(dir, ".debship/bin/debship")
	build := exec.Command("go", "build", "-o", bin, "./cmd/debship")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/debship: %v\n%s", err, out)
	}

	// The cluster as cluster apply --package labtest.AppliedVersion leaves it.
	l := labtest.Applied(t, 2, labtest.Release(t))
	inv, _ := labtest.Inventory(t, l)
	e := &labEnv{t: t, l: l, inv: inv}
	labtest.WaitServing(t, e.inv, 2*time.Minute)
	start := time.Now()

	// The repository's cluster.toml: the operator's key and known_hosts
	// are not on the runner.
	committed := *inv
	committed.SSH.Key, committed.SSH.KnownHosts = "", ""
	if err := committed.Write(filepath.Join(dir, ci.DefaultInventory)); err != nil {
		t.Fatal(err)
	}
	deb := "dist/" + filepath.Base(v5)
	v5ID, err := debfile.OpenDeb(v5)
	if err != nil {
		t.Fatal(err)
	}
	v5Target := v5ID.Target
	os.MkdirAll(filepath.Join(dir, "dist"), 0o755)
	if b, err := os.ReadFile(v5); err != nil || os.WriteFile(filepath.Join(dir, deb), b, 0o644) != nil {
		t.Fatalf("copy %s: %v", v5, err)
	}
	// The runner writes a File variable's value to a file named after it,
	// world-readable (the docker executor's umask is 0000); a value pasted
	// into GitLab's form often loses its last newline.
	vars := filepath.Join(t.TempDir(), "hello-web.tmp")
	os.MkdirAll(vars, 0o755)
	fileVar := func(name, from string) string {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(vars, name)
		if err := os.WriteFile(p, []byte(strings.TrimRight(string(b), "\n")), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyVar := ci.SSHKeyVariable + "=" + fileVar(ci.SSHKeyVariable, inv.SSH.Key)
	knownHostsVar := ci.KnownHostsVariable + "=" + fileVar(ci.KnownHostsVariable, inv.SSH.KnownHosts)

	// The script lines as the runner runs them: one bash, -e -o pipefail.
	// apt-get lines would install what this machine has.
	var lines []string
	for _, l := range append(append([]string{}, job.BeforeScript...), job.Script...) {
		if !strings.HasPrefix(l, "apt-get ") {
			lines = append(lines, l)
		}
	}
	runJob := func(t *testing.T, vars ...string) (string, error) {
		// Nothing of this machine's SSH setup: no agent, an empty home.
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CI=true", "GITLAB_CI=true",
			"CI_PROJECT_DIR=" + dir, "CI_COMMIT_TAG=v5.0.0", "CI_JOB_ID=4711", "GITLAB_USER_LOGIN=release-bot",
		}
		// The build jobs hand over one .deb per target: v5 for its own,
		// a stand-in for the others; deploy takes the nodes' release's.
		for _, r := range debian.Releases {
			if r.Target == v5Target {
				env = append(env, ci.DebPathVariable(r.Target)+"="+deb)
				continue
			}
			env = append(env, ci.DebPathVariable(r.Target)+"="+gitlabtest.MakeDeb(t, filepath.Join(dir, "dist"), "hello-web", "5.0", "1+deb"+strconv.Itoa(r.Version)+"u1", "other release"))
		}
		for k, v := range job.Variables {
			env = append(env, k+"="+v)
		}
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", strings.Join(lines, "\n"))
		cmd.Dir, cmd.Env = dir, append(env, vars...)
		out, err := cmd.CombinedOutput()
		t.Logf("deploy job:\n%s", out)
		return string(out), err
	}

	// Each node's own state: the history of a node can be shorter than
	// another's (a deploy rolled back on the first node never reached the
	// second).
	before := e.snapshot(t)
	for _, c := range []struct {
		name string
		vars []string
		want string
	}{
		{"without " + ci.SSHKeyVariable, []string{knownHostsVar},
			"debship: --ssh-key is empty, so DEBSHIP_SSH_KEY is not set (or is protected and the tag is not): add a CI/CD variable of type File named DEBSHIP_SSH_KEY holding a deploy key of the cluster's admin user"},
		{"without " + ci.KnownHostsVariable, []string{keyVar},
			"debship: --known-hosts is empty, so DEBSHIP_KNOWN_HOSTS is not set (or is protected and the tag is not): add a CI/CD variable of type File named DEBSHIP_KNOWN_HOSTS holding the output of ssh-keyscan -t ed25519 "},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runJob(t, c.vars...)
			if err == nil {
				t.Fatal("the job succeeded")
			}
			if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], c.want) {
				t.Errorf("want one line starting with %q", c.want)
			}
			e.unchangedSince(t, before)
		})
	}
	t.Run("with both: deploys 5.0-1", func(t *testing.T) {
		if _, err := runJob(t, keyVar, knownHostsVar); err != nil {
			t.Fatalf("deploy job: %v", err)
		}
		e.expectVersion(t, built(t, "5.0-1"), "5.0.0")
		hist := labtest.Sh(t, e.inv, "node1", "tail -n 1 "+HistoryFile)
		if !strings.Contains(hist, `"holder":"release-bot (CI job 4711)"`) || !strings.Contains(hist, `"outcome":"success"`) {
			t.Errorf("history records the deploy as %s", hist)
		}
	})
	t.Logf("the deploy job's three runs took %s", time.Since(start).Round(100*time.Millisecond))
}
