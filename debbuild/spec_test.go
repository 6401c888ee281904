package debbuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const baseProject = `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "My_Web.App"
version = "1.4.0rc1"
description = "A web app."
authors = [{name = "Ada Lovelace", email = "ada@example.org"}]

[project.scripts]
my-web-app = "app:main"
my-admin = "app:admin"

[project.urls]
Homepage = "https://example.org/app"

[tool.black]
line-length = 100
`

func writeProject(t *testing.T, pyproject string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pyproject.toml"), []byte(pyproject), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range extra {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadSpecDefaults(t *testing.T) {
	dir := writeProject(t, baseProject)
	s, err := LoadSpec(dir, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"package", s.Package, "my-web-app"},
		{"version", s.Version, "1.4.0rc1"},
		{"revision", s.Revision, "1"},
		{"maintainer", s.Maintainer, "Ada Lovelace <ada@example.org>"},
		{"description", s.Description, "A web app"},
		{"homepage", s.Homepage, "https://example.org/app"},
		{"python", s.Python, "/usr/bin/python3"},
		{"venv-dir", s.VenvDir, "/opt/venvs/my-web-app"},
		{"mode", s.Mode, "systemd"},
		{"compression", s.Compression, "xz"},
		{"user", s.User, ""},
		{"scripts", strings.Join(s.Scripts, ","), "my-admin,my-web-app"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	v, err := s.DebianVersion()
	if err != nil || v != "1.4~rc1-1" {
		t.Errorf("DebianVersion = %q, %v; want 1.4~rc1-1", v, err)
	}
}

func TestLoadSpecTable(t *testing.T) {
	dir := writeProject(t, baseProject+`
[tool.debship]
package = "webapp"
revision = "3"
maintainer = "Ops Team <ops@example.org>"
depends = ["libpq5", "nginx | apache2"]
mode = "cluster"
scripts = ["my-web-app"]
compression = "zstd"

[tool.debship.conffiles]
"conf/app.toml" = "/etc/webapp/app.toml"

[[tool.debship.service]]
exec = "my-web-app --port 8000"
after = ["postgresql.service"]
extra = ["MemoryMax=512M"]
port = 8000
health-path = "/healthz"

[tool.debship.ci]
docker-image = "ops/webapp"
`, "conf/app.toml")
	s, err := LoadSpec(dir, Overrides{Revision: "4"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Package != "webapp" || s.Revision != "4" || s.Mode != "cluster" || s.User != "webapp" || s.Compression != "zstd" {
		t.Errorf("got package=%q revision=%q mode=%q user=%q compression=%q", s.Package, s.Revision, s.Mode, s.User, s.Compression)
	}
	if len(s.Services) != 1 || s.Services[0].Exec != "/opt/venvs/webapp/bin/my-web-app --port 8000" || s.Services[0].Name != "webapp" {
		t.Errorf("services = %+v", s.Services)
	}
	if s.Services[0].WorkingDirectory != "/var/lib/webapp" || s.Services[0].Restart != "on-failure" {
		t.Errorf("service defaults = %+v", s.Services[0])
	}
	if len(s.Conffiles) != 1 || s.Conffiles[0].Dest != "/etc/webapp/app.toml" {
		t.Errorf("conffiles = %+v", s.Conffiles)
	}
	if s.CI.DockerImage != "ops/webapp" {
		t.Errorf("ci docker-image = %q", s.CI.DockerImage)
	}
}

// Every mistake a user can make in pyproject.toml gets one sentence naming
// the file, the line and the fix.
func TestLoadSpecErrors(t *testing.T) {
	cases := []struct {
		name    string
		project string
		extra   []string
		ov      Overrides
		want    []string
	}{
		{"syntax", baseProject + "\n[tool.debship\nmode = 1\n", nil, Overrides{}, []string{"pyproject.toml:21:14", "TOML syntax error"}},
		{"unknown key", baseProject + "\n[tool.debship]\nmode = \"systemd\"\npackge = \"x\"\n", nil, Overrides{}, []string{"pyproject.toml:23", `unknown key "packge" in [tool.debship]`, "spelling"}},
		{"unknown service key", baseProject + "\n[[tool.debship.service]]\nexec = \"my-web-app\"\nports = 80\n", nil, Overrides{}, []string{"pyproject.toml:23", `unknown key "ports" in [tool.debship.service]`}},
		{"illegal package", baseProject + "\n[tool.debship]\npackage = \"Web_App\"\n", nil, Overrides{}, []string{"pyproject.toml:22", "not a legal Debian package name"}},
		{"illegal package flag", baseProject, nil, Overrides{Package: "A"}, []string{"--package", "not a legal"}},
		{"bad version", strings.Replace(baseProject, `"1.4.0rc1"`, `"one.two"`, 1), nil, Overrides{}, []string{"pyproject.toml:7", "one.two"}},
		{"bad version flag", baseProject, nil, Overrides{Version: "latest"}, []string{"--version", "latest"}},
		{"no version", strings.Replace(baseProject, "version = \"1.4.0rc1\"\n", "", 1), nil, Overrides{}, []string{"no version", "dynamic"}},
		{"no name", strings.Replace(baseProject, "name = \"My_Web.App\"\n", "", 1), nil, Overrides{}, []string{"no name"}},
		{"exec not a script", baseProject + "\n[[tool.debship.service]]\nexec = \"gunicorn app:app\"\n", nil, Overrides{}, []string{"pyproject.toml:22", `exec "gunicorn"`, "my-admin, my-web-app"}},
		{"no exec", baseProject + "\n[[tool.debship.service]]\nname = \"web\"\n", nil, Overrides{}, []string{"pyproject.toml:21", "no exec"}},
		{"unit and exec", baseProject + "\n[[tool.debship.service]]\nexec = \"my-web-app\"\nunit = \"web.service\"\n", []string{"web.service"}, Overrides{}, []string{"both unit and exec"}},
		{"missing unit", baseProject + "\n[[tool.debship.service]]\nunit = \"web.service\"\n", nil, Overrides{}, []string{"pyproject.toml:22", "unit file"}},
		{"mode", baseProject + "\n[tool.debship]\nmode = \"docker\"\n", nil, Overrides{}, []string{"pyproject.toml:22", `mode "docker"`}},
		{"relative python", baseProject + "\n[tool.debship]\npython = \"python3\"\n", nil, Overrides{}, []string{"pyproject.toml:22", "absolute path"}},
		{"conffile outside etc", baseProject + "\n[tool.debship.conffiles]\n\"a.toml\" = \"/opt/a.toml\"\n", []string{"a.toml"}, Overrides{}, []string{"pyproject.toml:22", "under /etc/"}},
		{"conffile missing", baseProject + "\n[tool.debship.conffiles]\n\"b.toml\" = \"/etc/b.toml\"\n", nil, Overrides{}, []string{"pyproject.toml:22", "not a file"}},
		{"requirements missing", baseProject + "\n[tool.debship]\nrequirements = \"req.txt\"\n", nil, Overrides{}, []string{"pyproject.toml:22", "req.txt not found"}},
		{"maintainer form", baseProject + "\n[tool.debship]\nmaintainer = \"ops\"\n", nil, Overrides{}, []string{"pyproject.toml:22", "Your Name <you@example.org>"}},
		{"root user", baseProject + "\n[tool.debship]\nuser = \"root\"\n", nil, Overrides{}, []string{"pyproject.toml:22", "must not be root"}},
		{"wrong type", baseProject + "\n[tool.debship]\nrevision = 2\n", nil, Overrides{}, []string{"pyproject.toml:22", "tool.debship.revision must be a string in quotes, not an integer"}},
		{"bad restart", baseProject + "\n[[tool.debship.service]]\nexec = \"my-web-app\"\nrestart = \"sometimes\"\n", nil, Overrides{}, []string{"pyproject.toml:23", "restart"}},
		{"bad compression", baseProject, nil, Overrides{Compression: "bzip2"}, []string{"bzip2", "xz, zstd, gzip, none"}},
		{"bad mode flag", baseProject, nil, Overrides{Mode: "pacemaker"}, []string{"--mode", `"systemd" or "cluster"`}},
		{"bad revision", baseProject + "\n[tool.debship]\nrevision = \"1-2\"\n", nil, Overrides{}, []string{"pyproject.toml:22", "revision"}},
		{"bad docker image", baseProject + "\n[tool.debship.ci]\ndocker-image = \"User/Repo:latest\"\n", nil, Overrides{}, []string{"pyproject.toml:22", "user/repo"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeProject(t, c.project, c.extra...)
			_, err := LoadSpec(dir, c.ov)
			if err == nil {
				t.Fatalf("no error")
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Count(msg, "\n") > 0 {
				t.Errorf("error is not one sentence on one line: %q", msg)
			}
		})
	}
}

func TestLoadSpecMissingFile(t *testing.T) {
	_, err := LoadSpec(t.TempDir(), Overrides{})
	if err == nil || !strings.Contains(err.Error(), "pyproject.toml not found") {
		t.Fatalf("err = %v", err)
	}
}

func TestInitKeepsFile(t *testing.T) {
	dir := writeProject(t, baseProject)
	before, _ := os.ReadFile(filepath.Join(dir, "pyproject.toml"))
	if _, err := Init(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "pyproject.toml"))
	if !strings.HasPrefix(string(after), string(before)) {
		t.Fatalf("init changed the existing part of the file")
	}
	if !strings.Contains(string(after[len(before):]), "[tool.debship]") {
		t.Fatalf("init added no table")
	}
	// The result still parses, to the same Spec.
	s, err := LoadSpec(dir, Overrides{})
	if err != nil {
		t.Fatalf("after init: %v", err)
	}
	if s.Package != "my-web-app" {
		t.Errorf("package = %q", s.Package)
	}
	if _, err := Init(dir); err == nil || !strings.Contains(err.Error(), "already has a [tool.debship] table") {
		t.Fatalf("second init: %v", err)
	}
}

func TestSpecTargets(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
		err        string
	}{
		{"none", "", nil, ""},
		{"both", `targets = ["debian-13", "debian-12"]`, []string{"debian-13", "debian-12"}, ""},
		{"unknown", `targets = ["debian-13", "debian-11"]`, nil,
			`pyproject.toml:8: targets: unknown target "debian-11"; the targets are debian-13, debian-12`},
		{"twice", `targets = ["debian-12", "debian-12"]`, nil, "pyproject.toml:8: targets names debian-12 twice"},
		{"a suite name", `targets = ["trixie"]`, nil, `unknown target "trixie"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			py := "[project]\nname = \"app\"\nversion = \"1.0\"\nauthors = [{name = \"A\", email = \"a@example.org\"}]\n\n[tool.debship]\nmode = \"systemd\"\n" + tt.toml + "\n"
			if err := os.WriteFile(filepath.Join(dir, "pyproject.toml"), []byte(py), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := LoadSpec(dir, Overrides{})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(s.Targets, ",") != strings.Join(tt.want, ",") {
				t.Errorf("targets %v, want %v", s.Targets, tt.want)
			}
		})
	}
}
