package debbuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const svcTable = "\n[[tool.debship.service]]\nname = \"my-web-app\"\nexec = \"my-web-app serve\"\nenvironment-file = \"/etc/default/my-web-app\"\nextra = [\"Restart=always\", \"MemoryMax=512M\"]\n"

func TestMigrateKey(t *testing.T) {
	cases := []struct {
		name, project string
		want          []string // argv, or the error's parts
		err           bool
	}{
		{"console script with args", baseProject + "\n[tool.debship]\nmigrate = \"my-admin migrate --noinput\"\n" + svcTable,
			[]string{"/opt/venvs/my-web-app/bin/my-admin", "migrate", "--noinput"}, false},
		{"no key", baseProject + svcTable, nil, false},
		{"not a console script", baseProject + "\n[tool.debship]\nmigrate = \"alembic upgrade head\"\n" + svcTable,
			[]string{"pyproject.toml:22:", `migrate "alembic upgrade head" does not start with a console script of the project`, "my-admin, my-web-app"}, true},
		{"absolute path", baseProject + "\n[tool.debship]\nmigrate = \"/usr/bin/env my-admin\"\n" + svcTable,
			[]string{"pyproject.toml:22:", "does not start with a console script"}, true},
		{"shell metacharacter", baseProject + "\n[tool.debship]\nmigrate = \"my-admin migrate; rm -rf /\"\n" + svcTable,
			[]string{"pyproject.toml:22:", `migrate argument "migrate;" is not a plain word`, "without a shell"}, true},
		{"systemd specifier", baseProject + "\n[tool.debship]\nmigrate = \"my-admin --db=%h\"\n" + svcTable,
			[]string{"pyproject.toml:22:", `"--db=%h" is not a plain word`}, true},
		{"variable", baseProject + "\n[tool.debship]\nmigrate = \"my-admin $HOME\"\n" + svcTable,
			[]string{"pyproject.toml:22:", `"$HOME" is not a plain word`}, true},
		{"empty", baseProject + "\n[tool.debship]\nmigrate = \" \"\n" + svcTable,
			[]string{"pyproject.toml:22:", "migrate is empty"}, true},
		{"no service", baseProject + "\n[tool.debship]\nmigrate = \"my-admin migrate\"\n",
			[]string{"pyproject.toml:22:", "migrate needs a [[tool.debship.service]]"}, true},
		{"not a string", baseProject + "\n[tool.debship]\nmigrate = [\"my-admin\"]\n" + svcTable,
			[]string{"pyproject.toml:22", "migrate must be a string"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := LoadSpec(writeProject(t, c.project), Overrides{})
			if c.err {
				if err == nil {
					t.Fatalf("no error, migrate = %q", s.Migrate)
				}
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(s.Migrate, "|") != strings.Join(c.want, "|") {
				t.Errorf("migrate = %q, want %q", s.Migrate, c.want)
			}
		})
	}
}

// TestMigrateUnit renders the migration's unit: the service's user,
// environment, working directory and hardening, a oneshot that is never
// enabled, and the package's scripts record it only.
func TestMigrateUnit(t *testing.T) {
	dir := writeProject(t, baseProject+"\n[tool.debship]\nmode = \"cluster\"\nmigrate = \"my-admin migrate --noinput\"\n"+svcTable)
	s, err := LoadSpec(dir, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	g := &generator{spec: s, root: root, sde: 1770116400, debVersion: "1.4~rc1-1"}
	if err := g.generate(); err != nil {
		t.Fatal(err)
	}
	unit := readFile(t, root, "lib/systemd/system/my-web-app-migrate.service")
	for _, w := range []string{
		"Type=oneshot\nExecStart=/opt/venvs/my-web-app/bin/my-admin migrate --noinput\n",
		"User=my-web-app\nGroup=my-web-app\n", "WorkingDirectory=/var/lib/my-web-app\n",
		"EnvironmentFile=-/etc/default/my-web-app\n", "ProtectSystem=strict\n", "MemoryMax=512M\n",
	} {
		if !strings.Contains(unit, w) {
			t.Errorf("the migration's unit has no %q:\n%s", w, unit)
		}
	}
	for _, no := range []string{"Restart", "[Install]", "WantedBy"} {
		if strings.Contains(unit, no) {
			t.Errorf("the migration's unit has %q:\n%s", no, unit)
		}
	}
	post := string(g.scripts["postinst"])
	if !strings.Contains(post, "deb-systemd-helper update-state my-web-app-migrate.service") || strings.Contains(post, "enable my-web-app-migrate") {
		t.Errorf("postinst does not only record the migration's unit:\n%s", post)
	}
	if !strings.Contains(string(g.scripts["postrm"]), "my-web-app-migrate.service") {
		t.Errorf("postrm does not purge the migration's unit")
	}
}

func readFile(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
