package ci_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gitlab.com/debship/debship/ci"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testenv"
)

// TestDeployJobRefusesMissingVariables runs the deploy job's script, taken
// from the generated YAML, in a project with the example inventory and
// the CI/CD variables wrong in each way an operator can get them wrong:
// each fails before any node is contacted with one sentence that names the
// variable and how to make it, and the key never shows. (The lab test in
// cluster/deploy runs the same script with the variables right.)
func TestDeployJobRefusesMissingVariables(t *testing.T) {
	testenv.NeedCommand(t, "bash")
	bin := debshipBinary(t)
	_, files := generate(t, variants[0])
	deploy := jobOf(t, fileOf(t, files, ".gitlab-ci.yml"), "deploy")
	script := strings.Join(deploy.Script, "\n")
	for _, want := range []string{`--ssh-key "$` + ci.SSHKeyVariable + `"`, `--known-hosts "$` + ci.KnownHostsVariable + `"`} {
		if !strings.Contains(script, want) {
			t.Fatalf("the deploy job does not pass %s:\n%s", want, script)
		}
	}

	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, ".debship/bin"), 0o755)
	os.MkdirAll(filepath.Join(dir, "dist"), 0o755)
	if err := os.Symlink(bin, filepath.Join(dir, ".debship/bin/debship")); err != nil {
		t.Fatal(err)
	}
	inv, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/cluster.toml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ci.DefaultInventory), inv, 0o644)
	// One .deb per target, as the build jobs hand them over.
	var debVars []string
	for _, r := range debian.Releases {
		deb := "dist/hello-web_1.4.0-1+deb" + strconv.Itoa(r.Version) + "u1_all.deb"
		os.WriteFile(filepath.Join(dir, deb), []byte("not contacted"), 0o644)
		debVars = append(debVars, ci.DebPathVariable(r.Target)+"="+deb)
	}

	// GitLab writes a File variable's value to a file and puts its path in
	// the variable; a variable of type Variable holds the value itself.
	const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
	vars := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(vars, name)
		if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile := file("DEBSHIP_SSH_KEY", key)
	knownHosts := file("DEBSHIP_KNOWN_HOSTS", "203.0.113.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm2\n")
	empty := file("empty", "\n")

	keyFix := "add a CI/CD variable of type File named DEBSHIP_SSH_KEY holding a deploy key of the cluster's admin user \"admin\" " +
		"(ssh-keygen -t ed25519, its .pub in that user's authorized_keys)"
	khFix := "add a CI/CD variable of type File named DEBSHIP_KNOWN_HOSTS holding the output of " +
		"ssh-keyscan -t ed25519 203.0.113.11 203.0.113.12 203.0.113.13 checked against the nodes' fingerprints"
	cases := []struct {
		name string
		vars []string
		want string
	}{
		{"no key", []string{"DEBSHIP_KNOWN_HOSTS=" + knownHosts},
			"--ssh-key is empty, so DEBSHIP_SSH_KEY is not set (or is protected and the tag is not): " + keyFix},
		{"no known_hosts", []string{"DEBSHIP_SSH_KEY=" + keyFile},
			"--known-hosts is empty, so DEBSHIP_KNOWN_HOSTS is not set (or is protected and the tag is not): " + khFix},
		{"neither: the key first", nil, "--ssh-key is empty"},
		{"key of type Variable", []string{"DEBSHIP_SSH_KEY=" + key, "DEBSHIP_KNOWN_HOSTS=" + knownHosts},
			"--ssh-key holds the SSH key itself instead of the name of a file: make DEBSHIP_SSH_KEY a CI/CD variable of type File, not Variable"},
		{"known_hosts of type Variable", []string{"DEBSHIP_SSH_KEY=" + keyFile, "DEBSHIP_KNOWN_HOSTS=203.0.113.11 ssh-ed25519 AAAAC3Nza\n"},
			"--known-hosts holds the known_hosts itself instead of the name of a file: make DEBSHIP_KNOWN_HOSTS a CI/CD variable of type File"},
		{"empty key", []string{"DEBSHIP_SSH_KEY=" + empty, "DEBSHIP_KNOWN_HOSTS=" + knownHosts},
			"--ssh-key " + empty + " is an empty file: the CI/CD variable DEBSHIP_SSH_KEY (type File) must hold a deploy key of the cluster's admin user \"admin\""},
		{"empty known_hosts", []string{"DEBSHIP_SSH_KEY=" + keyFile, "DEBSHIP_KNOWN_HOSTS=" + empty},
			"--known-hosts " + empty + " is an empty file: the CI/CD variable DEBSHIP_KNOWN_HOSTS (type File) must hold the output of ssh-keyscan"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
			cmd.Dir = dir
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CI=true", "GITLAB_CI=true",
				"CI_PROJECT_DIR=" + dir, "CI_COMMIT_TAG=v1.4.0"}, append(debVars, c.vars...)...)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1:\n%s", err, out)
			}
			got := string(out)
			lines := strings.Split(strings.TrimSpace(got), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "debship: "+c.want) {
				t.Errorf("output:\n%s\nwant one line starting with:\ndebship: %s", got, c.want)
			}
			if strings.Contains(got, "PRIVATE KEY") || strings.Contains(got, "b3BlbnNza") {
				t.Errorf("the key shows in the output:\n%s", got)
			}
		})
	}
}
