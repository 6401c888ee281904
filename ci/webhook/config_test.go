package webhook

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory/inventorytest"
)

func TestConfigDefaults(t *testing.T) {
	e := newEnv(t, nil)
	c := e.cfg
	if c.Path != "/hooks/gitlab" || c.Trigger != TriggerPipeline || c.Source != SourceRegistry || c.MaxBody != DefaultMaxBody ||
		c.ShutdownGrace != 2*time.Second || c.DeployTimeout != DefaultDeployTimeout || c.Package != "hello-web" ||
		c.GitLabAPI != e.gl.URL+"/api/v4" || c.APIProject() != "42" || c.StateDir != filepath.Join(e.dir, "state") {
		t.Errorf("config %+v", c)
	}
	for tag, want := range map[string]bool{"v1.4.0": true, "1.4": true, "v2.0.0rc1": true, "v1.4.0-hotfix": false, "main": false, "v1": true} {
		if c.Tags.MatchString(tag) != want {
			t.Errorf("default tag pattern on %s: %v", tag, !want)
		}
	}
	if c.Token.reveal() != testToken || c.GitLabToken.reveal() != readToken {
		t.Error("secrets not read (or newline kept)")
	}
	if vars := c.SecretEnvVars(); len(vars) != 1 || vars[0] != "TEST_WEBHOOK_GITLAB_TOKEN" {
		t.Errorf("secret env vars %v", vars)
	}
}

// TestSecretsNeverPrint: a Config printed or marshalled any way shows no
// secret.
func TestSecretsNeverPrint(t *testing.T) {
	e := newEnv(t, func(s string) string {
		return s + "\n[signing-key]\nvalue = \"whsec_" + strings.Repeat("QUJD", 11) + "\"\n"
	})
	b, _ := json.Marshal(e.cfg)
	out := fmt.Sprintf("%v %+v %#v %s %q %x", e.cfg, e.cfg, e.cfg, e.cfg.Token, e.cfg.Token, e.cfg.GitLabToken) + string(b)
	for _, s := range []string{testToken, readToken, string(e.cfg.SigningKey.bytes())} {
		if strings.Contains(out, s) {
			t.Errorf("secret %.6s… printed", s)
		}
	}
	if !strings.Contains(out, "[redacted]") {
		t.Error("no [redacted] placeholder")
	}
}

func TestConfigErrors(t *testing.T) {
	credDir := t.TempDir()
	os.WriteFile(filepath.Join(credDir, "webhook_token"), []byte(testToken+"\n"), 0o400)
	replace := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("base config has no %q", old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	cases := []struct {
		name  string
		edit  func(string) string
		mode  os.FileMode
		setup func(dir string)
		want  string // a regexp; the file:line prefix is checked by line
		line  int
	}{
		{name: "unknown key", edit: replace("[project]\n", "[project]\nname = \"x\"\n"), want: `unknown key "name" in \[project\]`, line: 10},
		{name: "wrong type", edit: replace("id = 42", `id = "42"`), want: `project.id must be an integer`, line: 10},
		{name: "syntax", edit: replace("id = 42", "id = = 42"), want: `TOML syntax error`, line: 10},
		{name: "inline token, world-readable file", edit: replace("[token]\nfile = \"token\"", "[token]\nvalue = \""+testToken+"\""), mode: 0o644,
			want: `token is written inline, and .*/webhook.toml can be read by its group and every user \(mode 0644\), but a secret is for its owner alone; chmod 600 .*/webhook.toml, or move the secret to a file, credential or env$`, line: 7},
		{name: "inline token, group-readable file", edit: replace("[token]\nfile = \"token\"", "[token]\nvalue = \""+testToken+"\""), mode: 0o640,
			want: `token is written inline, and .*/webhook.toml can be read by its group \(mode 0640\), but a secret is for its owner alone; chmod 600 .*/webhook.toml, or move`, line: 7},
		{name: "token file world-readable", setup: func(dir string) { os.Chmod(filepath.Join(dir, "token"), 0o644) },
			want: `token file .*/token can be read by its group and every user \(mode 0644\), but a secret is for its owner alone; chmod 600 .*/token$`, line: 7},
		{name: "token file group-readable", setup: func(dir string) { os.Chmod(filepath.Join(dir, "token"), 0o640) },
			want: `token file .*/token can be read by its group \(mode 0640\), but a secret is for its owner alone; chmod 600 .*/token$`, line: 7},
		{name: "token file a symbolic link", setup: func(dir string) {
			os.Rename(filepath.Join(dir, "token"), filepath.Join(dir, "token.real"))
			os.Symlink("token.real", filepath.Join(dir, "token"))
		}, want: `token file .*/token is a symbolic link, which could be pointed elsewhere behind your back; name the file itself \(readlink -f .*/token\)$`, line: 7},
		{name: "world-writable config", mode: 0o602, want: `writable by every user`},
		{name: "two sources", edit: replace("file = \"token\"", "file = \"token\"\nenv = \"HOME\""), want: `needs exactly one of file, env, credential or value \(got 2\)`, line: 6},
		{name: "env unset", edit: replace("file = \"token\"", "env = \"NO_SUCH_VAR_FOR_TEST\""), want: `environment variable NO_SUCH_VAR_FOR_TEST of the token is empty`, line: 7},
		{name: "credential without systemd", edit: replace("file = \"token\"", "credential = \"webhook_token\""), want: `CREDENTIALS_DIRECTORY is not set`, line: 7},
		{name: "short token", setup: func(dir string) { os.WriteFile(filepath.Join(dir, "token"), []byte("short"), 0o600) }, want: `only 5 characters`, line: 6},
		{name: "public listen without TLS", edit: replace(`listen = "127.0.0.1:0"`, `listen = "0.0.0.0:8470"`), want: `reachable from other hosts over plain HTTP`, line: 2},
		{name: "bad listen", edit: replace(`listen = "127.0.0.1:0"`, `listen = "8470"`), want: `is not host:port`, line: 2},
		{name: "no project", edit: replace("id = 42\npath = \"acme/hello-web\"\n", ""), want: `no project`},
		{name: "bad event", edit: replace(`event = "pipeline"`, `event = "push"`), want: `trigger event "push" is not`, line: 14},
		{name: "bad tag pattern", edit: replace(`event = "pipeline"`, "event = \"pipeline\"\ntags = \"v(\""), want: `tags = "v\(" is not a regular expression`, line: 15},
		{name: "plain http GitLab", edit: func(s string) string {
			return regexp.MustCompile(`url = ".*"`).ReplaceAllString(s, `url = "http://gitlab.example.com"`)
		}, want: `uses plain http`, line: 17},
		{name: "token in the GitLab URL", edit: func(s string) string {
			return regexp.MustCompile(`url = ".*"`).ReplaceAllString(s, `url = "https://user:glpat-x@gitlab.example.com"`)
		}, want: `must not hold credentials`, line: 17},
		{name: "relative command", edit: replace(`command = ["/bin/true"]`, `command = ["true"]`), want: `must be an absolute path`, line: 25},
		{name: "no inventory and no command", edit: replace("[deploy]\ncommand = [\"/bin/true\"]\n", ""), want: `no inventory`},
		{name: "missing inventory", edit: editFunc(replace("[deploy]\ncommand = [\"/bin/true\"]\n", "")).withTop(`inventory = "nope.toml"`), want: `inventory: .*nope.toml`, line: 1},
		{name: "bad signing key", edit: func(s string) string { return s + "\n[signing-key]\nvalue = \"whsec_???\"\n" }, want: `not GitLab's whsec_<base64> form`, line: 27},
		{name: "duration", edit: replace(`shutdown-grace = "2s"`, `shutdown-grace = "2 minutes"`), want: `shutdown-grace = "2 minutes" is not a duration`, line: 4},
		{name: "artifacts-job without artifacts", edit: replace(`package = "hello-web"`, "package = \"hello-web\"\nartifacts-job = \"build\""), want: `only used with source = "artifacts"`, line: 19},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", "")
			dir := t.TempDir()
			text := strings.ReplaceAll(baseConfig, "{{GITLAB}}", "https://gitlab.example.com")
			if c.edit != nil {
				text = c.edit(text)
			}
			t.Setenv("TEST_WEBHOOK_GITLAB_TOKEN", readToken)
			os.WriteFile(filepath.Join(dir, "token"), []byte(testToken+"\n"), 0o600)
			p := filepath.Join(dir, "webhook.toml")
			os.WriteFile(p, []byte(text), 0o600)
			if c.mode != 0 {
				os.Chmod(p, c.mode)
			}
			if c.setup != nil {
				c.setup(dir)
			}
			_, err := Load(p)
			if err == nil {
				t.Fatalf("no error for:\n%s", text)
			}
			if !regexp.MustCompile(c.want).MatchString(err.Error()) {
				t.Errorf("error %q does not match %q", err, c.want)
			}
			if c.line > 0 && !strings.Contains(err.Error(), fmt.Sprintf("%s:%d:", p, c.line)) {
				t.Errorf("error %q is not at %s:%d", err, p, c.line)
			}
			for _, s := range []string{testToken, readToken} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
	t.Run("credential under systemd", func(t *testing.T) {
		t.Setenv("CREDENTIALS_DIRECTORY", credDir)
		e := newEnv(t, replace("file = \"token\"", "credential = \"webhook_token\""))
		if e.cfg.Token.reveal() != testToken {
			t.Error("credential not read")
		}
	})
	t.Run("inline token in a private file", func(t *testing.T) {
		e := newEnv(t, replace("[token]\nfile = \"token\"", "[token]\nvalue = \""+testToken+"\""))
		if e.cfg.Token.reveal() != testToken {
			t.Error("inline token not read")
		}
	})
	t.Run("public listen behind a proxy", func(t *testing.T) {
		newEnv(t, replace(`listen = "127.0.0.1:0"`, "listen = \"10.0.0.5:8470\"\nbehind-proxy = true"))
	})
}

// withTop adds a line at the top of a config text.
type editFunc func(string) string

func (f editFunc) withTop(line string) func(string) string {
	return func(s string) string { return line + "\n" + f(s) }
}

// TestConfigTarget: [gitlab] target picks the .deb of the nodes' release;
// without it the nodes are read (an inventory is needed), and the
// artifacts job follows the target as `debship ci generate` names it.
func TestConfigTarget(t *testing.T) {
	invDir := t.TempDir()
	writeInventory(t, invDir)
	inventoryLine := `inventory = "` + filepath.Join(invDir, "cluster.toml") + `"`
	cases := []struct {
		name      string
		inventory bool   // an inventory instead of the deploy command
		gitlab    string // lines added to [gitlab] (the base's target removed)
		target    string // Config.Target
		artifacts string // ArtifactsJobFor the nodes' release debian-12
		err       string // a regexp, at line 19 unless errLine says otherwise
		errLine   int
	}{
		{name: "target", gitlab: `target = "debian-13"`, target: "debian-13"},
		{name: "other target", gitlab: `target = "debian-12"`, target: "debian-12"},
		{name: "artifacts job follows the target", gitlab: "target = \"debian-12\"\nsource = \"artifacts\"", target: "debian-12", artifacts: "build:debian-12"},
		{name: "artifacts job as written", gitlab: "target = \"debian-13\"\nsource = \"artifacts\"\nartifacts-job = \"package\"", target: "debian-13", artifacts: "package"},
		{name: "unset, read from the inventory's nodes", inventory: true, target: ""},
		{name: "unset with artifacts: the nodes' build job", inventory: true, gitlab: `source = "artifacts"`, target: "", artifacts: "build:debian-12"},
		{name: "inventory, target named", inventory: true, gitlab: `target = "debian-12"`, target: "debian-12"},
		{name: "unknown target", gitlab: `target = "debian-11"`, err: `target: unknown target "debian-11"; the targets are debian-13, debian-12$`},
		{name: "suite instead of target", gitlab: `target = "trixie"`, err: `target = "trixie" is a codename; write target = "debian-13"$`},
		{name: "unset without an inventory", err: `no target: add \[gitlab\] target = "debian-13" \(the nodes' Debian release, one of debian-13, debian-12\), or an inventory`, errLine: 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			text := strings.ReplaceAll(baseConfig, "{{GITLAB}}", "https://gitlab.example.com")
			text = strings.Replace(text, "target = \"debian-13\"\n", c.gitlab+"\n", 1)
			if c.inventory {
				text = inventoryLine + "\n" + strings.Replace(text, "[deploy]\ncommand = [\"/bin/true\"]\n", "", 1)
			}
			cfg, err := writeConfig(t, dir, text)
			if c.err != "" {
				line := c.errLine
				if line == 0 {
					line = 19
				}
				want := fmt.Sprintf("^%s:%d: %s", regexp.QuoteMeta(filepath.Join(dir, "webhook.toml")), line, c.err)
				if err == nil || !regexp.MustCompile(want).MatchString(err.Error()) {
					t.Fatalf("error %v, want %s, for:\n%s", err, want, text)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Target != c.target {
				t.Errorf("target %q, want %q", cfg.Target, c.target)
			}
			if c.artifacts != "" {
				if got := cfg.ArtifactsJobFor(or(cfg.Target, "debian-12")); cfg.Source != SourceArtifacts || got != c.artifacts {
					t.Errorf("source %s, artifacts job %q, want %q", cfg.Source, got, c.artifacts)
				}
			}
		})
	}
}

// writeInventory writes a valid cluster.toml of two nodes running
// hello-web into dir.
func writeInventory(t *testing.T, dir string) {
	t.Helper()
	inventorytest.Write(t, dir, `name = "lab"
[ssh]
user = "deploy"
[[node]]
name = "a"
address = "10.0.0.1"
[[node]]
name = "b"
address = "10.0.0.2"
[floating-ip]
address = "10.0.0.100/24"
[app]
package = "hello-web"
port = 8000
`)
}

func TestInventoryGivesPackage(t *testing.T) {
	dir := t.TempDir()
	writeInventory(t, dir)
	text := strings.ReplaceAll(baseConfig, "{{GITLAB}}", "https://gitlab.example.com")
	text = strings.Replace(text, "package = \"hello-web\"\n", "", 1)
	text = strings.Replace(text, "[deploy]\ncommand = [\"/bin/true\"]\n", "", 1)
	c, err := writeConfig(t, dir, "inventory = \"cluster.toml\"\n"+text)
	if err != nil {
		t.Fatal(err)
	}
	if c.Package != "hello-web" || c.Inventory != filepath.Join(dir, "cluster.toml") {
		t.Errorf("package %q inventory %q", c.Package, c.Inventory)
	}
	// A package that contradicts the inventory is an error.
	_, err = writeConfig(t, dir, "inventory = \"cluster.toml\"\n"+strings.Replace(text, "[gitlab]\n", "[gitlab]\npackage = \"other\"\n", 1))
	if err == nil || !strings.Contains(err.Error(), `the inventory`) {
		t.Errorf("contradicting package: %v", err)
	}
}
