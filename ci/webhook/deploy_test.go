package webhook

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/shtest"
	"gitlab.com/debship/debship/internal/syncbuf"
)

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommandDeployer(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cmd := script(t, dir, "deploy.sh", `{ echo "args: $*"; env | grep -E '^(DEBSHIP_|SECRET_FOR_TEST|KEEP_FOR_TEST)' | sort; } >`+out+`
echo "installing $DEBSHIP_VERSION"
`)
	t.Setenv("SECRET_FOR_TEST", "hush")
	t.Setenv("KEEP_FOR_TEST", "yes")
	t.Setenv("DEBSHIP_VERSION", "from the parent")
	var logs syncbuf.Buffer
	d := &CommandDeployer{Argv: []string{cmd, "--flag"}, Inventory: "/etc/debship/cluster.toml", DropEnv: []string{"SECRET_FOR_TEST"},
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	job := Job{ID: "7", Tag: "v1.4.0", Version: "1.4", ProjectID: 42, SHA: "9f2c4e1b"}
	if err := d.Deploy(context.Background(), job, "/var/lib/x/hello-web_1.4-1_all.deb"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	got := string(b)
	for _, want := range []string{
		"args: --flag /var/lib/x/hello-web_1.4-1_all.deb",
		"DEBSHIP_DEB=/var/lib/x/hello-web_1.4-1_all.deb", "DEBSHIP_VERSION=1.4\n", "DEBSHIP_TAG=v1.4.0", "DEBSHIP_JOB=7",
		"DEBSHIP_PROJECT_ID=42", "DEBSHIP_SHA=9f2c4e1b", "DEBSHIP_INVENTORY=/etc/debship/cluster.toml", "KEEP_FOR_TEST=yes",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("command saw:\n%s\nwant %q", got, want)
		}
	}
	if strings.Contains(got, "hush") || strings.Contains(got, "from the parent") {
		t.Errorf("the command inherited a secret or a stale DEBSHIP_ variable:\n%s", got)
	}
	if !strings.Contains(logs.String(), "installing 1.4") {
		t.Errorf("output not logged: %s", logs.String())
	}
}

func TestCommandDeployerFailureAndCancel(t *testing.T) {
	dir := t.TempDir()
	fail := script(t, dir, "fail.sh", "echo step one\necho 'no healthy node' >&2\nexit 3\n")
	d := &CommandDeployer{Argv: []string{fail}}
	err := d.Deploy(context.Background(), Job{ID: "1"}, "/x.deb")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "no healthy node") {
		t.Errorf("err = %v", err)
	}

	// Cancelling sends SIGTERM to the whole process group: the script's
	// trap runs (a deploy can clean up), and its child sleep dies too.
	marker := filepath.Join(dir, "cleaned")
	slow := script(t, dir, "slow.sh", "trap 'echo cleaned >"+marker+"; exit 143' TERM\nsleep 30 &\nwait\n")
	d = &CommandDeployer{Argv: []string{slow}, WaitDelay: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	t0 := time.Now()
	err = d.Deploy(ctx, Job{ID: "2"}, "/x.deb")
	if err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("cancel took %s", d)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the script's TERM trap did not run: %v", err)
	}
}

// TestArtifactsSource deploys from the build job's artifacts instead of
// the package registry, end to end through a CommandDeployer (what
// `debship webhook serve` runs with a [deploy] command).
func TestArtifactsSource(t *testing.T) {
	e := newEnv(t, func(s string) string {
		return strings.Replace(s, `package = "hello-web"`, "package = \"hello-web\"\nsource = \"artifacts\"", 1)
	})
	// The generated pipeline's build job per target; target = "debian-13".
	e.green("v1.4.0")
	var b []byte
	for target, deb := range makeTargetDebs(t, "1.4.0") {
		data, _ := os.ReadFile(deb)
		if target == "debian-13" {
			b = data
		}
		e.gl.AddJobArtifacts(projectID, "v1.4.0", "build:"+target, map[string][]byte{"dist/" + filepath.Base(deb): data, "build.env": []byte("DEB_PATH_X=dist/x\n")})
	}
	dir := t.TempDir()
	got := filepath.Join(dir, "got.deb")
	e.deployer = &CommandDeployer{Argv: []string{script(t, dir, "deploy.sh", "cp \"$1\" "+got+"\n")}, DropEnv: e.cfg.SecretEnvVars()}
	e.start()
	if code, a := e.send(EventPipeline, pipeline(t, "v1.4.0"), ""); code != 202 {
		t.Fatalf("%d %+v", code, a)
	}
	s := e.waitFor("the deploy", func(s Status) bool { return idle(s) && len(s.Recent) == 1 })
	if j := s.Recent[0]; j.State != StateSucceeded || j.Deb != "hello-web_1.4.0-1+deb13u1_all.deb" {
		t.Errorf("job %+v", j)
	}
	if g, _ := os.ReadFile(got); string(g) != string(b) {
		t.Error("the deploy command did not get the .deb of the artifacts")
	}
	if !strings.Contains(e.logs.String(), "artifacts, checked: package name and version only") {
		t.Errorf("the log does not say what was checked:\n%s", e.logs.String())
	}
}

// TestHostileDeployCommandArgs: webhook.toml's [deploy] command is argv,
// never a shell line: hostile arguments (quotes, ';', $(…), white space,
// newlines …) reach the command exactly as written, one argument each.
func TestHostileDeployCommandArgs(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cmd := script(t, dir, "deploy.sh", `printf '%s\0' "$@" >`+out+"\n")
	d := &CommandDeployer{Argv: append([]string{cmd}, shtest.Hostile...), Inventory: "/etc/debship/cluster.toml"}
	if err := d.Deploy(context.Background(), Job{ID: "1", Tag: "v1.0", Version: "1.0"}, "/var/lib/x/a.deb"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	want := append(append([]string{}, shtest.Hostile...), "/var/lib/x/a.deb")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the command got %q, want %q", got, want)
	}
}
