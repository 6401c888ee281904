package webhook

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"

	"gitlab.com/debship/debship/ci"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testenv"
	"gitlab.com/debship/debship/templates"
)

// unitTemplate is the unit debship's own .deb ships
// (packaging/debship-deb: units).
const unitTemplate = "webhook/debship-webhook.service"

func renderUnit(t *testing.T) string {
	t.Helper()
	b, err := templates.Render(unitTemplate, map[string]string{"Version": "v0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnitHardening(t *testing.T) {
	u := renderUnit(t)
	for _, want := range []string{
		"ExecStart=/usr/bin/debship webhook serve --config /etc/debship/webhook.toml\n",
		"DynamicUser=yes\n", "User=debship-webhook\n", "StateDirectory=debship-webhook\n",
		"LoadCredential=webhook:/etc/debship/webhook-credentials\n",
		"NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "ProtectHome=yes\n", "PrivateTmp=yes\n",
		"CapabilityBoundingSet=\n", "SystemCallFilter=@system-service\n", "UMask=0077\n",
		"KillMode=mixed\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	if strings.Contains(u, "User=root") || strings.Contains(u, "ReadWritePaths=/") {
		t.Error("the unit gives away privileges")
	}
}

// TestExampleConfigMatchesUnit loads the example webhook.toml the way the
// unit runs it: credentials named as the unit's LoadCredential= directory
// makes them, the state directory from $STATE_DIRECTORY.
func TestExampleConfigMatchesUnit(t *testing.T) {
	ex, err := templates.Raw("webhook/webhook.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	os.Mkdir(creds, 0o700)
	// LoadCredential=webhook:<dir> names each file webhook_<file>.
	for file, v := range map[string]string{"token": testToken, "gitlab-token": readToken} {
		os.WriteFile(filepath.Join(creds, "webhook_"+file), []byte(v+"\n"), 0o400)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	t.Setenv("STATE_DIRECTORY", filepath.Join(dir, "state"))
	// The example deploys to an inventory; here a command stands in, and
	// without the inventory's nodes to read it from, the target is named.
	text := strings.Replace(string(ex), `inventory = "/etc/debship/cluster.toml"`, "", 1)
	text = uncomment(t, text, "target")
	text = strings.Replace(text, "# command = [\"/usr/local/bin/my-deploy\"]", "[deploy]\ncommand = [\"/bin/true\"]", 1)
	text = strings.Replace(text, "# arch = \"amd64\"               # default: this host's", "package = \"app\"", 1)
	p := filepath.Join(dir, "webhook.toml")
	os.WriteFile(p, []byte(text), 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	if c.Token.reveal() != testToken || c.GitLabToken.reveal() != readToken || c.StateDir != filepath.Join(dir, "state") || c.Listen != DefaultListen || c.Target != debian.Releases[0].Target {
		t.Errorf("example config %+v", c)
	}
	if !strings.Contains(renderUnit(t), "webhook_<file> (webhook.toml: credential = \"webhook_token\")") {
		t.Error("the unit's comment no longer explains the credential names the example uses")
	}
}

// TestExampleDocumentsTarget: the example's [gitlab] target names every
// release of the table, and its artifacts-job line shows the job `debship
// ci generate` names for the example's target, the default it claims to be.
func TestExampleDocumentsTarget(t *testing.T) {
	ex, err := templates.Raw("webhook/webhook.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(ex)
	for _, tg := range debian.Targets() {
		if !strings.Contains(text, `"`+tg+`"`) {
			t.Errorf("the example does not name the target %q", tg)
		}
	}
	var fc fileConfig
	on := uncomment(t, uncomment(t, text, "target"), "artifacts-job")
	if err := toml.Unmarshal([]byte(on), &fc); err != nil {
		t.Fatal(err)
	}
	if _, ok := debian.ByTarget(fc.GitLab.Target); !ok {
		t.Errorf("the example's target %q is not in the table", fc.GitLab.Target)
	}
	if want := ci.BuildJobName(fc.GitLab.Target); fc.GitLab.ArtifactsJob != want {
		t.Errorf("the example's artifacts-job is %q; the default for target %q is %q", fc.GitLab.ArtifactsJob, fc.GitLab.Target, want)
	}
	if !strings.Contains(text, "default: build:<target>") {
		t.Error("the example does not say what artifacts-job defaults to")
	}
}

// uncomment turns the example's commented "# key = …" line into a setting.
func uncomment(t *testing.T, text, key string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^# (` + regexp.QuoteMeta(key) + ` = )`)
	if !re.MatchString(text) {
		t.Fatalf("the example has no commented %s line", key)
	}
	return re.ReplaceAllString(text, "$1")
}

// TestUnitVerifies runs systemd-analyze verify on the unit in a root made
// of this host's systemd units, with a debship binary where ExecStart
// points, and checks its exposure with systemd-analyze security.
func TestUnitVerifies(t *testing.T) {
	testenv.NeedCommand(t, "systemd-analyze")
	testenv.NeedFile(t, "/lib/systemd/system/sysinit.target")
	root := t.TempDir()
	sys := filepath.Join(root, "lib/systemd/system")
	if err := copyTree("/lib/systemd/system", sys); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	// verify checks that ExecStart's binary exists and is executable in
	// the root, nothing more.
	if err := os.WriteFile(filepath.Join(root, "usr/bin/debship"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sys, "debship-webhook.service"), []byte(renderUnit(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, "/lib/systemd/system/debship-webhook.service").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Exposure 2.0 of 10 at most ("OK"); --threshold counts in tenths.
	out, err = exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=20", "--root="+root, "/lib/systemd/system/debship-webhook.service").CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze security: %s", lines[len(lines)-1])
}

// copyTree copies regular files and symlinks (units are both).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, to)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
		return nil
	})
}
