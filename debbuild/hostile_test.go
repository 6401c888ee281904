package debbuild

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gitlab.com/debship/debship/internal/shtest"
	"gitlab.com/debship/debship/internal/tomlfile"
)

// hostileSpecFields are the pyproject.toml values that reach the
// maintainer scripts (run as root by dpkg), with their key and a valid
// prefix. Each is refused by LoadSpec with "file:line:" at its key.
var hostileSpecFields = []struct{ key, prefix string }{
	{"project.name", "web"},
	{"tool.debship.package", "web"},
	{"tool.debship.user", "web"},
	{"tool.debship.venv-dir", "/opt/venvs/"},
	{"tool.debship.service.0.name", "web"},
}

func hostileProject(t *testing.T, key, value string) string {
	t.Helper()
	v := map[string]string{"project.name": "web", "tool.debship.package": "web", "tool.debship.user": "web",
		"tool.debship.venv-dir": "/opt/venvs/web", "tool.debship.service.0.name": "web"}
	v[key] = value
	pkg := "package = " + strconv.Quote(v["tool.debship.package"]) + "\n"
	if key == "project.name" {
		pkg = "" // the package name comes from the project's
	}
	return writeProject(t, fmt.Sprintf(`[project]
name = %s
version = "1.0"
authors = [{name = "Ada Lovelace", email = "ada@example.org"}]
[project.scripts]
web = "app:main"
[tool.debship]
%suser = %s
venv-dir = %s
[[tool.debship.service]]
name = %s
exec = "web"
`, strconv.Quote(v["project.name"]), pkg, strconv.Quote(v["tool.debship.user"]), strconv.Quote(v["tool.debship.venv-dir"]),
		strconv.Quote(v["tool.debship.service.0.name"])))
}

// TestHostileSpecValues feeds hostile values (quotes, ';', $(…), white
// space, newlines, a leading '-', non-ASCII, "..") into every pyproject.toml
// value that reaches the maintainer scripts: LoadSpec refuses each with
// one sentence at the key's line. The scripts quote these values too, as a
// second line: rendered with the hostile values put straight into a Spec,
// every script holds each one as one literal word of a real shell parse
// (all but a leading '-', which only the grammar keeps out).
func TestHostileSpecValues(t *testing.T) {
	if _, err := LoadSpec(hostileProject(t, "project.name", "web"), Overrides{}); err != nil {
		t.Fatalf("the base project does not load: %v", err)
	}
	for _, f := range hostileSpecFields {
		name := f.key[strings.LastIndexByte(f.key, '.')+1:]
		for _, h := range shtest.Hostile {
			forms := []string{h}
			if !strings.HasPrefix(h, "-") {
				forms = append(forms, f.prefix+h)
			}
			for _, v := range forms {
				dir := hostileProject(t, f.key, v)
				_, err := LoadSpec(dir, Overrides{})
				if err == nil {
					t.Errorf("%s = %q loads; want an error at its line", f.key, v)
					continue
				}
				file := filepath.Join(dir, "pyproject.toml")
				doc, _ := os.ReadFile(file)
				prefix := fmt.Sprintf("%s:%d: ", file, tomlfile.Lines(doc)[f.key])
				if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), name) {
					t.Errorf("%s = %q: the error does not name %s at %s\n%v", f.key, v, name, prefix, err)
				}
			}
		}
	}

	for _, h := range shtest.Hostile {
		if strings.HasPrefix(h, "-") {
			continue // quoting cannot stop an option; only the grammar does (above)
		}
		for _, mode := range []string{"systemd", "cluster"} {
			s := &Spec{Package: "web", Mode: mode, User: h, VenvDir: "/opt/venvs/" + h}
			scripts, err := maintainerScripts(s, []string{h + ".service", "web.service"}, []string{h + "-migrate.service"})
			if err != nil {
				t.Fatal(err)
			}
			for name, b := range scripts {
				if found, err := shtest.Literal(string(b), h); err != nil || !found {
					t.Errorf("%s (mode %s) with %q: found %v, %v", name, mode, h, found, err)
				}
			}
		}
	}
}
