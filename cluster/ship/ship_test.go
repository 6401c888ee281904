package ship_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/ci/gitlab"
	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
	"gitlab.com/debship/debship/cluster/deploy"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/ship"
	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/testenv"
)

const (
	projectID = 42
	token     = "glpat-ship-test"
)

// project writes a tiny stdlib-only project named dynapp. version is its
// [project] version, or "" for a dynamic one: setuptools reads it from
// dynapp.__version__ (2.5.0), so only the build knows it.
func project(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dynapp")
	head := `dynamic = ["version"]`
	if version != "" {
		head = `version = "` + version + `"`
	}
	files := map[string]string{
		"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "dynapp"
` + head + `
description = "ship test project"
requires-python = ">=3.9"
authors = [{name = "Test", email = "test@example.org"}]

[project.scripts]
dynapp = "dynapp:main"

[tool.setuptools.dynamic]
version = {attr = "dynapp.__version__"}
`,
		"src/dynapp/__init__.py": "__version__ = \"2.5.0\"\n\n\ndef main():\n    print(__version__)\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fixture is a fake GitLab and a fake deploy step: no cluster needed.
type fixture struct {
	srv      *gitlabtest.Server
	deployed []deploy.Options
	log      bytes.Buffer
}

func newFixture(t *testing.T, tags ...string) *fixture {
	f := &fixture{srv: gitlabtest.New()}
	t.Cleanup(f.srv.Close)
	f.srv.AddProject(projectID, "acme/dynapp", tags...)
	f.srv.AddToken(token, gitlabtest.Developer)
	return f
}

func (f *fixture) options(dir, pkg string) ship.Options {
	inv := &inventory.Inventory{Path: "cluster.toml", App: inventory.App{Package: pkg}}
	return ship.Options{
		Dir: dir,
		// Offline, as examples/hello-web: setuptools comes from Debian's
		// python3-setuptools-whl; a fixed time makes two builds identical.
		Build: debbuild.BuildOptions{NoIndex: true, SourceDateEpoch: 1700000000},
		Release: &gitlab.Config{APIURL: f.srv.APIURL(), Project: "42", Token: token,
			RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond},
		Deploy: deploy.Options{Inventory: inv, Kind: deploy.KindDeploy, Holder: "test"},
		RunDeploy: func(_ context.Context, o deploy.Options) (*deploy.Result, error) {
			f.deployed = append(f.deployed, o)
			return &deploy.Result{Outcome: deploy.OutcomeSuccess}, nil
		},
		Log: &f.log,
	}
}

// checkShipped: the release of tag holds exactly the .deb the deploy got.
func (f *fixture) checkShipped(t *testing.T, res *ship.Result, tag, registryVersion, file string) {
	t.Helper()
	if filepath.Base(res.Deb) != file || res.Identity.FileName() != file {
		t.Errorf("shipped %s (identity %+v), want %s", res.Deb, res.Identity, file)
	}
	rel, links := f.srv.Release(projectID, tag)
	if rel == nil || len(links) != 1 || links[0].Name != file {
		t.Fatalf("release %s: %+v, links %+v", tag, rel, links)
	}
	files := f.srv.Files(projectID, "dynapp", registryVersion)
	if len(files) != 1 || files[0].FileName != file || files[0].FileSHA256 != res.Identity.SHA256 {
		t.Errorf("registry dynapp %s: %+v, want %s with SHA-256 %s", registryVersion, files, file, res.Identity.SHA256)
	}
	if len(f.deployed) == 0 || f.deployed[len(f.deployed)-1].Deb != res.Deb {
		t.Errorf("deployed %+v, want %s", f.deployed, res.Deb)
	}
}

// A dynamic version is known only after the build. ship used to ask the
// spec for its version first and stopped with "version is empty; valid
// versions look like 1.2, ..."; now it builds, and the release gets the
// version of the built .deb: tag v2.5.0, registry version 2.5.0.
func TestShipDynamicVersion(t *testing.T) {
	testenv.NeedFile(t, "/usr/bin/python3")
	f := newFixture(t, "v2.5.0")
	dir := project(t, "")
	res, err := ship.Run(context.Background(), f.options(dir, "dynapp"))
	if err != nil {
		t.Fatalf("ship: %v\n%s", err, f.log.String())
	}
	ver, _ := debversion.VersionFor("2.5-1", "")
	if !res.Built || res.Identity.Package != "dynapp" || res.Identity.Version != ver || res.Identity.Arch != "all" {
		t.Errorf("built %v, identity %+v", res.Built, res.Identity)
	}
	if filepath.Dir(res.Deb) != filepath.Join(dir, "dist") {
		t.Errorf("built into %s, want PROJECT-DIR/dist", res.Deb)
	}
	if res.Release == nil || !res.Release.Created {
		t.Errorf("release result %+v", res.Release)
	}
	f.checkShipped(t, res, "v2.5.0", "2.5.0", "dynapp_"+ver+"_all.deb")
	if !strings.Contains(f.log.String(), "ship: the version of dynapp is dynamic") {
		t.Errorf("log does not say why it builds:\n%s", f.log.String())
	}

	// Run again (a ship whose deploy failed): built again, the same
	// bytes, so the release changes nothing and the deploy runs.
	uploads := f.srv.Uploads()
	again, err := ship.Run(context.Background(), f.options(dir, "dynapp"))
	if err != nil {
		t.Fatalf("ship again: %v\n%s", err, f.log.String())
	}
	if again.Identity != res.Identity || f.srv.Uploads() != uploads || len(f.deployed) != 2 {
		t.Errorf("again: %+v (was %+v), uploads %d → %d, deploys %d", again.Identity, res.Identity, uploads, f.srv.Uploads(), len(f.deployed))
	}
}

// A static version: the .deb of that version in dist is found, not built
// (no Python needed), and released under v<project version>.
func TestShipFindsTheDeb(t *testing.T) {
	f := newFixture(t, "v1.4.0")
	dir := project(t, "1.4.0")
	dist := filepath.Join(dir, "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	// The revision of a build for this host's release ("1+deb12u1").
	ver, _ := debversion.VersionFor("1.4-1", "")
	rev := strings.TrimPrefix(ver, "1.4-")
	gitlabtest.MakeDeb(t, dist, "dynapp", "1.3", rev, "older")      // another version: not it
	gitlabtest.MakeDeb(t, dist, "dynapp", "1.4", "1", "untargeted") // another target: not it
	deb := gitlabtest.MakeDeb(t, dist, "dynapp", "1.4", rev, "current")
	res, err := ship.Run(context.Background(), f.options(dir, "dynapp"))
	if err != nil {
		t.Fatalf("ship: %v\n%s", err, f.log.String())
	}
	if res.Built || res.Deb != deb {
		t.Errorf("built %v, shipped %s, want the existing %s", res.Built, res.Deb, deb)
	}
	f.checkShipped(t, res, "v1.4.0", "1.4.0", "dynapp_"+ver+"_all.deb")
}

func TestShipRefuses(t *testing.T) {
	f := newFixture(t, "v1.4.0")
	dir := project(t, "1.4.0")

	// Another package than the cluster's: nothing built, released or deployed.
	_, err := ship.Run(context.Background(), f.options(dir, "hello-web"))
	if err == nil || !strings.Contains(err.Error(), `builds the package "dynapp", but the cluster in cluster.toml runs "hello-web"`) {
		t.Errorf("wrong package: %v", err)
	}

	// A dry run publishes nothing.
	ver, _ := debversion.VersionFor("1.4-1", "")
	gitlabtest.MakeDeb(t, filepath.Join(dir, "dist"), "dynapp", "1.4", strings.TrimPrefix(ver, "1.4-"), "x")
	o := f.options(dir, "dynapp")
	o.Deploy.DryRun = true
	res, err := ship.Run(context.Background(), o)
	if err != nil || res.Release != nil || f.srv.Uploads() != 0 || len(f.deployed) != 1 || !f.deployed[0].DryRun {
		t.Errorf("dry run: %v, release %+v, uploads %d, deploys %+v", err, res.Release, f.srv.Uploads(), f.deployed)
	}

	// A failed release deploys nothing.
	o = f.options(dir, "dynapp")
	o.Release.Tag = "v1.4.1"
	if _, err := ship.Run(context.Background(), o); err == nil || !strings.HasPrefix(err.Error(), "release (nothing was deployed): tag v1.4.1 does not match") || len(f.deployed) != 1 {
		t.Errorf("mismatched tag: %v, deploys %d", err, len(f.deployed))
	}
}
