package gitlab_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/debship/debship/ci/gitlab"
	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
)

const readToken = "glpat-reporter-secret"

// fetchCfg is what the webhook receiver has: a read-only access token and
// the tag to deploy.
func (f *fixture) fetchCfg(tag string) gitlab.Config {
	f.srv.AddToken(readToken, gitlabtest.Reporter)
	c := f.cfg()
	c.Token, c.JobToken, c.Tag, c.Files = readToken, false, tag, nil
	c.TokenHint = "fix the token file"
	return c
}

func TestFetchPackageAfterRelease(t *testing.T) {
	f := newFixture(t)
	if _, err := gitlab.Release(context.Background(), f.cfg()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	got, err := gitlab.FetchPackage(context.Background(), f.fetchCfg("v1.4.0"), gitlab.FetchOptions{Package: "hello-web", Arch: "amd64", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != sha(t, f.deb) || got.Version != "1.4.0-1" || got.Source != "registry" {
		t.Errorf("fetched %+v", got)
	}
	if got.Path != filepath.Join(dir, "hello-web_1.4.0-1_all.deb") || sha(t, got.Path) != sha(t, f.deb) {
		t.Errorf("path %s", got.Path)
	}
	// Nothing but the .deb is left in the directory.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("download dir holds %d entries", len(ents))
	}
	for _, r := range f.srv.Requests() {
		if r.Method == "GET" && strings.Contains(r.Path, "/packages/generic/") && r.Auth != "PRIVATE-TOKEN" {
			t.Errorf("download without the access token: %+v", r)
		}
	}
}

func TestFetchPackagePrefersArchAndNewest(t *testing.T) {
	f := newFixture(t)
	all := makeDeb(t, f.dir, "hello-web", "1.4.0", "1", "all")
	b, _ := os.ReadFile(all)
	f.srv.AddPackageFile(projectID, "hello-web", "1.4.0", "hello-web_1.4.0-1_all.deb", b)
	f.srv.AddPackageFile(projectID, "hello-web", "1.4.0", "hello-web_1.4.0-1_arm64.deb", []byte("not for us"))
	older := makeDeb(t, t.TempDir(), "hello-web", "1.4.0", "1", "older")
	ob, _ := os.ReadFile(older)
	f.srv.AddPackageFile(projectID, "hello-web", "1.4.0", "hello-web_1.4.0-1_amd64.deb", ob)
	newer := makeDeb(t, t.TempDir(), "hello-web", "1.4.0", "1", "newer")
	nb, _ := os.ReadFile(newer)
	f.srv.AddPackageFile(projectID, "hello-web", "1.4.0", "hello-web_1.4.0-1_amd64.deb", nb)
	got, err := gitlab.FetchPackage(context.Background(), f.fetchCfg("v1.4.0"), gitlab.FetchOptions{Package: "hello-web", Arch: "amd64", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got.FileName != "hello-web_1.4.0-1_amd64.deb" || got.SHA256 != sha(t, newer) {
		t.Errorf("picked %s %s, want the newest amd64 upload", got.FileName, got.SHA256)
	}
}

func TestFetchPackageRefusesTamperedFile(t *testing.T) {
	f := newFixture(t)
	if _, err := gitlab.Release(context.Background(), f.cfg()); err != nil {
		t.Fatal(err)
	}
	evil := makeDeb(t, t.TempDir(), "hello-web", "1.4.0", "1", "evil")
	eb, _ := os.ReadFile(evil)
	if !f.srv.TamperPackageFile(projectID, "hello-web", "1.4.0", "hello-web_1.4.0-1_all.deb", eb) {
		t.Fatal("no file to tamper with")
	}
	dir := t.TempDir()
	_, err := gitlab.FetchPackage(context.Background(), f.fetchCfg("v1.4.0"), gitlab.FetchOptions{Package: "hello-web", Arch: "amd64", Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "refusing to deploy") {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a refused download left %d files", len(ents))
	}
}

func TestFetchPackageErrors(t *testing.T) {
	f := newFixture(t)
	if _, err := gitlab.Release(context.Background(), f.cfg()); err != nil {
		t.Fatal(err)
	}
	opts := gitlab.FetchOptions{Package: "hello-web", Arch: "amd64", Dir: t.TempDir()}

	// A tag without a release.
	_, err := gitlab.FetchPackage(context.Background(), f.fetchCfg("v1.5.0"), opts)
	if err == nil || !strings.Contains(err.Error(), "has no package hello-web 1.5.0") {
		t.Errorf("missing package: %v", err)
	}
	// A file under the tag's version that holds another version.
	other := makeDeb(t, t.TempDir(), "hello-web", "1.3.0", "1", "old")
	ob, _ := os.ReadFile(other)
	f.srv.AddPackageFile(projectID, "hello-web", "1.6.0", "hello-web_1.6.0-1_all.deb", ob)
	_, err = gitlab.FetchPackage(context.Background(), f.fetchCfg("v1.6.0"), opts)
	if err == nil || !strings.Contains(err.Error(), "does not match version 1.3.0") {
		t.Errorf("wrong version inside: %v", err)
	}
	// Another package under our name.
	foreign := makeDeb(t, t.TempDir(), "other-app", "1.7.0", "1", "x")
	fb, _ := os.ReadFile(foreign)
	f.srv.AddPackageFile(projectID, "hello-web", "1.7.0", "hello-web_1.7.0-1_all.deb", fb)
	_, err = gitlab.FetchPackage(context.Background(), f.fetchCfg("v1.7.0"), opts)
	if err == nil || !strings.Contains(err.Error(), "is package other-app, not hello-web") {
		t.Errorf("foreign package: %v", err)
	}
	// A rejected token: the caller's hint, never the token.
	c := f.fetchCfg("v1.4.0")
	c.Token = "glpat-wrong-secret"
	_, err = gitlab.FetchPackage(context.Background(), c, opts)
	if err == nil || !strings.Contains(err.Error(), "fix the token file") || strings.Contains(err.Error(), c.Token) {
		t.Errorf("bad token: %v", err)
	}
	// Transient 502s are retried.
	f.srv.Fail("GET", "/packages/generic/", 502, 2)
	if _, err := gitlab.FetchPackage(context.Background(), f.fetchCfg("v1.4.0"), opts); err != nil {
		t.Errorf("after two 502: %v", err)
	}
	// The size limit.
	o := opts
	o.MaxBytes = 100
	_, err = gitlab.FetchPackage(context.Background(), f.fetchCfg("v1.4.0"), o)
	if err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("limit: %v", err)
	}
}

func TestFetchArtifact(t *testing.T) {
	f := newFixture(t)
	b, _ := os.ReadFile(f.deb)
	f.srv.AddJobArtifacts(projectID, "v1.4.0", "build", map[string][]byte{
		"dist/hello-web_1.4.0-1_all.deb": b,
		"dist/build.env":                 []byte("DEB=dist/hello-web_1.4.0-1_all.deb\n"),
	})
	got, err := gitlab.FetchArtifact(context.Background(), f.fetchCfg("v1.4.0"), "build", gitlab.FetchOptions{Package: "hello-web", Arch: "amd64", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != sha(t, f.deb) || got.Source != "artifacts" || got.Version != "1.4.0-1" {
		t.Errorf("fetched %+v", got)
	}
	_, err = gitlab.FetchArtifact(context.Background(), f.fetchCfg("v1.4.0"), "package", gitlab.FetchOptions{Package: "hello-web", Arch: "amd64", Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing job: %v", err)
	}
}

// A release holds one .deb per Debian release (the pipeline's build job per
// target): Release uploads them all, and a fetch takes the one for the
// nodes' release, or refuses to guess without one.
func TestReleaseAndFetchPerTarget(t *testing.T) {
	f := newFixture(t)
	d13 := makeDeb(t, f.dir, "hello-web", "1.4.0", "1+deb13u1", "trixie")
	d12 := makeDeb(t, f.dir, "hello-web", "1.4.0", "1+deb12u1", "bookworm")
	res, err := gitlab.Release(context.Background(), f.cfg(d13, d12))
	if err != nil {
		t.Fatalf("release of both targets: %v\n%s", err, f.log.String())
	}
	if len(res.Assets) != 2 {
		t.Fatalf("released %d files, want 2: %+v", len(res.Assets), res.Assets)
	}
	tests := []struct {
		target, want, err string
	}{
		{"debian-13", d13, ""},
		{"debian-12", d12, ""},
		{"", "", "several Debian releases (hello-web_1.4.0-1+deb12u1_all.deb, hello-web_1.4.0-1+deb13u1_all.deb)"},
	}
	for _, tt := range tests {
		got, err := gitlab.FetchPackage(context.Background(), f.fetchCfg("v1.4.0"), gitlab.FetchOptions{Package: "hello-web", Arch: "amd64", Target: tt.target, Dir: t.TempDir()})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("target %q: got %v, want %q", tt.target, err, tt.err)
			}
			continue
		}
		if err != nil || got.SHA256 != sha(t, tt.want) {
			t.Errorf("target %q: fetched %+v, %v; want %s", tt.target, got, err, filepath.Base(tt.want))
		}
	}
	// The artifacts of one pipeline hold both too.
	b13, _ := os.ReadFile(d13)
	b12, _ := os.ReadFile(d12)
	f.srv.AddJobArtifacts(projectID, "v1.4.0", "release", map[string][]byte{
		"dist/" + filepath.Base(d13): b13, "dist/" + filepath.Base(d12): b12,
	})
	got, err := gitlab.FetchArtifact(context.Background(), f.fetchCfg("v1.4.0"), "release", gitlab.FetchOptions{Package: "hello-web", Arch: "amd64", Target: "debian-12", Dir: t.TempDir()})
	if err != nil || got.SHA256 != sha(t, d12) {
		t.Errorf("artifact for debian-12: %+v %v", got, err)
	}
}
