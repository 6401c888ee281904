package ci_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"gitlab.com/debship/debship/ci"
	"gitlab.com/debship/debship/debbuild"
)

// -update rewrites the golden files (and the repository's own
// .gitlab-ci.yml) from the templates; review the diff like code.
var update = flag.Bool("update", false, "rewrite golden files")

const pinned = "v0.1.0"

// repoRoot is the directory of go.mod, found from the test's working
// directory (the package directory under `go test`).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

type variant struct {
	name    string
	project string // relative to the repo root
	opts    func(*ci.Options)
}

// variants are the pipelines `ci generate` can produce that the acceptance
// tests name: plain, --docker, --no-deploy, --auto-deploy, with and without
// tests, plus buildah and a custom test command.
var variants = []variant{
	{"plain", "examples/hello-web", func(o *ci.Options) {}},
	{"docker", "examples/hello-web", func(o *ci.Options) { o.Docker = true }},
	{"docker-buildah", "examples/hello-web", func(o *ci.Options) { o.DockerImage, o.DockerBuilder = "acme/hello-web", "buildah" }},
	{"no-deploy", "examples/hello-web", func(o *ci.Options) { o.Deploy = false }},
	{"auto-deploy", "examples/hello-web", func(o *ci.Options) { o.AutoDeploy, o.Inventory = true, "deploy/prod.toml" }},
	{"no-tests", "ci/testdata/notests", func(o *ci.Options) {}},
	{"test-command", "ci/testdata/notests", func(o *ci.Options) {
		o.TestCommand = `python -m unittest discover -s "src" -p '*_test.py'`
		o.BuildImage = "debian:12"
	}},
}

func generate(t *testing.T, v variant) (*debbuild.Spec, []ci.File) {
	t.Helper()
	spec, err := debbuild.LoadSpec(filepath.Join(repoRoot(t), v.project), debbuild.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	o := ci.FromSpec(spec, pinned)
	v.opts(&o)
	files, err := ci.Generate(spec, o)
	if err != nil {
		t.Fatalf("%s: %v", v.name, err)
	}
	return spec, files
}

func fileOf(t *testing.T, files []ci.File, name string) []byte {
	t.Helper()
	for _, f := range files {
		if f.Name == name {
			return f.Content
		}
	}
	t.Fatalf("%s was not generated", name)
	return nil
}

func TestGolden(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			_, files := generate(t, v)
			for _, f := range files {
				// Golden names without the leading dot, so they are
				// visible in a listing and not taken for real config.
				golden := filepath.Join("testdata", "golden", v.name, strings.TrimPrefix(f.Name, "."))
				if *update {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					if err := os.WriteFile(golden, f.Content, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./ci -run TestGolden -update)", err)
				}
				if d := ci.UnifiedDiff(f.Name, want, f.Content); d != "" {
					t.Errorf("%s differs from %s (go test ./ci -run TestGolden -update, then review):\n%s", f.Name, golden, d)
				}
			}
		})
	}
}

func TestStableOutput(t *testing.T) {
	for _, v := range variants {
		_, a := generate(t, v)
		_, b := generate(t, v)
		for i := range a {
			if !bytes.Equal(a[i].Content, b[i].Content) {
				t.Errorf("%s/%s: two runs differ", v.name, a[i].Name)
			}
		}
	}
}

// --- schema ---

func loadSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gitlab-ci-schema", "gitlab-ci.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != ci.SchemaSHA256 {
		t.Fatalf("testdata/gitlab-ci-schema/gitlab-ci.json has sha256 %x, not ci.SchemaSHA256; refresh both together (SOURCES.md there)", sum)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("gitlab-ci.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("gitlab-ci.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlToJSON converts YAML to the JSON value the schema describes; yaml.v3
// resolves anchors and merge keys on the way.
func yamlToJSON(t *testing.T, y []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("YAML → JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestSchemaValidatesEveryVariant(t *testing.T) {
	s := loadSchema(t)
	for _, v := range variants {
		_, files := generate(t, v)
		if err := s.Validate(yamlToJSON(t, fileOf(t, files, ".gitlab-ci.yml"))); err != nil {
			t.Errorf("%s: %v", v.name, err)
		}
	}
}

func TestSchemaValidatesRepoPipeline(t *testing.T) {
	s := loadSchema(t)
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(yamlToJSON(t, b)); err != nil {
		t.Error(err)
	}
}

// TestSchemaRejectsBrokenFile proves the validation above can fail.
func TestSchemaRejectsBrokenFile(t *testing.T) {
	s := loadSchema(t)
	_, files := generate(t, variants[0])
	good := string(fileOf(t, files, ".gitlab-ci.yml"))
	for name, broken := range map[string]string{
		"typo in a job key": strings.Replace(good, "  artifacts:\n    paths:\n      - dist/", "  artifact:\n    paths:\n      - dist/", 1),
		"bad when":          strings.Replace(good, "      when: manual", "      when: sometimes", 1),
		"not a boolean":     strings.Replace(good, "  interruptible: false\n", "  interruptible: maybe\n", 1),
	} {
		if broken == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if err := s.Validate(yamlToJSON(t, []byte(broken))); err == nil {
			t.Errorf("%s: the schema accepted a broken file", name)
		}
	}
}

// --- the repository's own pipeline ---

func TestRepoPipeline(t *testing.T) {
	want, err := ci.RepoPipeline()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(repoRoot(t), ".gitlab-ci.yml")
	if *update {
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if d := ci.UnifiedDiff(".gitlab-ci.yml", got, want); d != "" {
		t.Errorf(".gitlab-ci.yml is stale (go test ./ci -run TestRepoPipeline -update):\n%s", d)
	}
}

// --- writing, --check and hand edits ---

func TestWriteCheckAndHandEdits(t *testing.T) {
	dir := t.TempDir()
	_, files := generate(t, variants[1]) // with Docker: three files
	st, err := ci.Write(dir, files, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Action != "created" {
			t.Errorf("%s: %s", s.Name, s.Action)
		}
	}
	// Unchanged input: --check is happy and a second write changes nothing.
	if st, _ := ci.Check(dir, files); anyAction(st) != "" {
		t.Errorf("fresh files reported %s", anyAction(st))
	}
	if st, _ := ci.Write(dir, files, false); st[0].Action != "unchanged" {
		t.Errorf("second write: %+v", st)
	}
	// New options make the committed files stale; --check shows a diff.
	_, newer := generate(t, variants[4]) // --auto-deploy
	st, err = ci.Check(dir, newer)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Action != "stale" || !strings.Contains(st[0].Diff, "-      when: manual") || !strings.HasPrefix(st[0].Diff, "--- a/.gitlab-ci.yml\n+++ b/.gitlab-ci.yml\n@@ ") {
		t.Errorf("check: %+v", st[0])
	}
	// A file debship wrote may be regenerated...
	if _, err := ci.Write(dir, newer, false); err != nil {
		t.Fatalf("regenerating a pristine file: %v", err)
	}
	// ...but not once it was edited by hand.
	p := filepath.Join(dir, ".gitlab-ci.yml")
	b, _ := os.ReadFile(p)
	edited := bytes.Replace(b, []byte("expire_in: 1 week"), []byte("expire_in: 1 month"), 1)
	os.WriteFile(p, edited, 0o644)
	if ci.Pristine(edited) {
		t.Fatal("a hand-edited file passes for pristine")
	}
	_, err = ci.Write(dir, files, false)
	var he *ci.HandEditedError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "--force") || !strings.Contains(he.Diff, "-    expire_in: 1 month") {
		t.Fatalf("hand edit: %v", err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, edited) {
		t.Error("a refused write changed the file")
	}
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
		t.Error(err)
	}
	// A file without debship's header is somebody else's: refused too.
	os.WriteFile(p, []byte("stages: [test]\n"), 0o644)
	if _, err := ci.Write(dir, files, false); !errors.As(err, &he) {
		t.Errorf("foreign file: %v", err)
	}
	if _, err := ci.Write(dir, files, true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, files[0].Content) || !ci.Pristine(got) {
		t.Error("--force did not write the generated file")
	}
}

func anyAction(st []ci.Status) string {
	for _, s := range st {
		if s.Action != "unchanged" {
			return s.Name + " " + s.Action
		}
	}
	return ""
}

func TestUnpinnedVersionIsRefused(t *testing.T) {
	spec, err := debbuild.LoadSpec(filepath.Join(repoRoot(t), "examples/hello-web"), debbuild.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "latest", "dev", "v0.1.0-3-gabcdef0", "v0.1.0-dirty", "main", "1.0"} {
		o := ci.FromSpec(spec, v)
		_, err := ci.Generate(spec, o)
		if err == nil || !strings.Contains(err.Error(), "--debship-version") {
			t.Errorf("version %q: %v", v, err)
		}
	}
	for _, v := range []string{"v0.1.0", "v1.2.3-rc.1", "v0.0.0-20261126120000-abcdef012345"} {
		if _, err := ci.Generate(spec, ci.FromSpec(spec, v)); err != nil {
			t.Errorf("version %q: %v", v, err)
		}
	}
}

func TestBadOptions(t *testing.T) {
	spec, err := debbuild.LoadSpec(filepath.Join(repoRoot(t), "examples/hello-web"), debbuild.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		set  func(*ci.Options)
		want string
	}{
		{func(o *ci.Options) { o.Inventory = "../cluster.toml" }, "--inventory: inventory"},
		{func(o *ci.Options) { o.Inventory = "my inv.toml" }, "--inventory: inventory"},
		{func(o *ci.Options) { o.DockerImage = "Acme/App:1" }, "--docker-image"},
		{func(o *ci.Options) { o.DockerBuilder = "kaniko" }, "--docker-builder"},
		{func(o *ci.Options) { o.TestCommand = "a\nb" }, "--test-command"},
		{func(o *ci.Options) { o.BuildImage = "debian:latest" }, "not pinned"},
	} {
		o := ci.FromSpec(spec, pinned)
		c.set(&o)
		if _, err := ci.Generate(spec, o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	// Docker needs a service with a port.
	noPort, err := debbuild.LoadSpec(filepath.Join(repoRoot(t), "ci/testdata/noport"), debbuild.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	o := ci.FromSpec(noPort, pinned)
	o.Docker = true
	if _, err := ci.Generate(noPort, o); err == nil || !strings.Contains(err.Error(), "has no port") {
		t.Errorf("docker without port: %v", err)
	}
}

// --- no secrets in generated files ---

func TestNoSecretsInGeneratedFiles(t *testing.T) {
	secretish := regexp.MustCompile(`(?i)(glpat-|glcbt-|dckr_pat_|password\s*[:=]|token\s*[:=]\s*\S)`)
	for _, v := range variants {
		_, files := generate(t, v)
		for _, f := range files {
			if m := secretish.Find(f.Content); m != nil {
				t.Errorf("%s/%s contains %q", v.name, f.Name, m)
			}
			// Secrets are only ever referenced as CI/CD variables.
			if bytes.Contains(f.Content, []byte("DOCKERHUB_TOKEN")) && !bytes.Contains(f.Content, []byte(`"$DOCKERHUB_TOKEN"`)) {
				t.Errorf("%s/%s uses DOCKERHUB_TOKEN other than as a variable", v.name, f.Name)
			}
		}
	}
}
