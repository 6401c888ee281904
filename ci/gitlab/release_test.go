package gitlab_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/ci/gitlab"
	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
)

const (
	projectID   = 42
	projectPath = "acme/hello-web"
	devToken    = "glpat-developer-secret"
	jobToken    = "glcbt-job-secret"
)

// makeDeb writes a small real .deb: release reads the package name and the
// version back from it.
func makeDeb(t *testing.T, dir, name, version, revision, payload string) string {
	t.Helper()
	return gitlabtest.MakeDeb(t, dir, name, version, revision, payload)
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type fixture struct {
	srv *gitlabtest.Server
	deb string
	dir string
	log bytes.Buffer
}

func newFixture(t *testing.T, tags ...string) *fixture {
	t.Helper()
	f := &fixture{srv: gitlabtest.New(), dir: t.TempDir()}
	t.Cleanup(f.srv.Close)
	if len(tags) == 0 {
		tags = []string{"v1.4.0"}
	}
	f.srv.AddProject(projectID, projectPath, tags...)
	f.srv.AddToken(devToken, gitlabtest.Developer)
	f.srv.AddJobToken(jobToken, gitlabtest.Developer)
	f.deb = makeDeb(t, f.dir, "hello-web", "1.4.0", "1", "one")
	return f
}

// cfg is what the release job has in CI: the predefined variables.
func (f *fixture) cfg(files ...string) gitlab.Config {
	env := map[string]string{
		"CI_API_V4_URL": f.srv.APIURL(),
		"CI_PROJECT_ID": "42",
		"CI_COMMIT_TAG": "v1.4.0",
		"CI_JOB_TOKEN":  jobToken,
	}
	c := gitlab.ConfigFromEnv(func(k string) string { return env[k] })
	if len(files) == 0 {
		files = []string{f.deb}
	}
	c.Files = files
	c.Log = &f.log
	c.RetryWaitMin, c.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	return c
}

func TestFirstRelease(t *testing.T) {
	f := newFixture(t)
	res, err := gitlab.Release(context.Background(), f.cfg())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.ReleaseURL != f.srv.URL+"/acme/hello-web/-/releases/v1.4.0" {
		t.Errorf("created=%v url=%q", res.Created, res.ReleaseURL)
	}
	files := f.srv.Files(projectID, "hello-web", "1.4.0")
	if len(files) != 1 || files[0].FileName != "hello-web_1.4.0-1_all.deb" || files[0].FileSHA256 != sha(t, f.deb) {
		t.Fatalf("registry files: %+v", files)
	}
	rel, links := f.srv.Release(projectID, "v1.4.0")
	if rel == nil || rel.Name != "hello-web 1.4.0" || !strings.Contains(rel.Description, sha(t, f.deb)) {
		t.Fatalf("release: %+v", rel)
	}
	wantURL := f.srv.APIURL() + "/projects/42/packages/generic/hello-web/1%2E4%2E0/hello-web_1%2E4%2E0-1_all%2Edeb"
	if len(links) != 1 || links[0].Name != "hello-web_1.4.0-1_all.deb" || links[0].LinkType != "package" ||
		links[0].DirectAssetPath != "/packages/hello-web_1.4.0-1_all.deb" || links[0].URL != wantURL {
		t.Fatalf("links: %+v (want url %s)", links, wantURL)
	}
	// The link really downloads the uploaded bytes.
	req, _ := http.NewRequest(http.MethodGet, links[0].URL, nil)
	req.Header.Set("JOB-TOKEN", jobToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	got.ReadFrom(resp.Body)
	s := sha256.Sum256(got.Bytes())
	if resp.StatusCode != 200 || hex.EncodeToString(s[:]) != sha(t, f.deb) {
		t.Errorf("download: %d, sha256 %x", resp.StatusCode, s)
	}
	// In CI the job token is sent in JOB-TOKEN, and never anything else.
	for _, r := range f.srv.Requests() {
		if r.Auth != "JOB-TOKEN" {
			t.Errorf("%s %s authenticated with %q", r.Method, r.Path, r.Auth)
		}
	}
	if strings.Contains(f.log.String(), jobToken) {
		t.Error("the token was logged")
	}
}

func TestRerunIsIdempotent(t *testing.T) {
	f := newFixture(t)
	f.srv.MaxPerPage = 1 // every list spans pages: the client must follow them
	// A link added by hand stays, and pushes ours to a second page.
	if _, err := gitlab.Release(context.Background(), f.cfg()); err != nil {
		t.Fatal(err)
	}
	f.srv.AddLink(projectID, "v1.4.0", gitlabtest.Link{Name: "changelog", URL: "https://example.org/changes", LinkType: "other"})
	uploads := f.srv.Uploads()
	for i := 0; i < 2; i++ {
		res, err := gitlab.Release(context.Background(), f.cfg())
		if err != nil {
			t.Fatalf("run %d: %v", i+2, err)
		}
		if res.Created || res.Assets[0].Uploaded || res.Assets[0].Link != "unchanged" {
			t.Errorf("run %d: created=%v uploaded=%v link=%s", i+2, res.Created, res.Assets[0].Uploaded, res.Assets[0].Link)
		}
	}
	if n := f.srv.Uploads(); n != uploads {
		t.Errorf("re-runs uploaded %d more files", n-uploads)
	}
	if files := f.srv.Files(projectID, "hello-web", "1.4.0"); len(files) != 1 {
		t.Errorf("registry has %d files, want 1", len(files))
	}
	if _, links := f.srv.Release(projectID, "v1.4.0"); len(links) != 2 {
		t.Errorf("release has %d links, want the package and the hand-made one: %+v", len(links), links)
	}
}

func TestRerunAddsMissingLinkAndSecondFile(t *testing.T) {
	f := newFixture(t)
	f.srv.MaxPerPage = 1
	if _, err := gitlab.Release(context.Background(), f.cfg()); err != nil {
		t.Fatal(err)
	}
	amd64 := makeDeb(t, f.dir, "hello-web-extra", "1.4.0", "1", "two")
	res, err := gitlab.Release(context.Background(), f.cfg(f.deb, amd64))
	if err != nil {
		t.Fatal(err)
	}
	if res.Assets[0].Uploaded || !res.Assets[1].Uploaded || res.Assets[1].Link != "created" {
		t.Errorf("assets: %+v", res.Assets)
	}
	if _, links := f.srv.Release(projectID, "v1.4.0"); len(links) != 2 {
		t.Errorf("links: %+v", links)
	}
}

func TestChangedFileIsRefused(t *testing.T) {
	f := newFixture(t)
	if _, err := gitlab.Release(context.Background(), f.cfg()); err != nil {
		t.Fatal(err)
	}
	rebuilt := makeDeb(t, t.TempDir(), "hello-web", "1.4.0", "1", "different bytes")
	_, err := gitlab.Release(context.Background(), f.cfg(rebuilt))
	if err == nil || !strings.Contains(err.Error(), "differs from the hello-web_1.4.0-1_all.deb already published") {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.srv.Files(projectID, "hello-web", "1.4.0")); n != 1 {
		t.Errorf("%d files in the registry, want 1", n)
	}
}

func TestTokenRejected(t *testing.T) {
	f := newFixture(t)
	c := f.cfg()
	c.Token = "glcbt-expired"
	_, err := gitlab.Release(context.Background(), c)
	assertOneSentence(t, err, "GitLab rejected the CI job token (401 Unauthorized: 401 Unauthorized)")
	if strings.Contains(err.Error(), "glcbt-expired") {
		t.Error("the token is in the error")
	}
	// An access token goes in PRIVATE-TOKEN; a wrong one says so too.
	c.Token, c.JobToken = "glpat-wrong", false
	_, err = gitlab.Release(context.Background(), c)
	assertOneSentence(t, err, "set GITLAB_TOKEN to a valid, unexpired access token")
}

func TestProjectMissing(t *testing.T) {
	f := newFixture(t)
	c := f.cfg()
	c.Project, c.Token, c.JobToken = "acme/nope", devToken, false
	_, err := gitlab.Release(context.Background(), c)
	assertOneSentence(t, err, "project acme/nope was not found (404 Not Found)")
}

func TestProjectByPathIsURLEncoded(t *testing.T) {
	f := newFixture(t)
	c := f.cfg()
	c.Project, c.Token, c.JobToken = projectPath, devToken, false
	if _, err := gitlab.Release(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for _, r := range f.srv.Requests() {
		if !strings.HasPrefix(r.Path, "/api/v4/projects/acme%2Fhello-web/") {
			t.Errorf("project path not encoded: %s", r.Path)
		}
		if r.Auth != "PRIVATE-TOKEN" {
			t.Errorf("%s sent %q, want PRIVATE-TOKEN", r.Path, r.Auth)
		}
	}
}

func TestTransient502ThenSuccess(t *testing.T) {
	f := newFixture(t)
	f.srv.Fail(http.MethodPut, "/packages/generic/", http.StatusBadGateway, 2)
	f.srv.Fail(http.MethodPost, "/releases", http.StatusBadGateway, 1)
	f.srv.Throttle(http.MethodGet, "/releases/v1", 1, "0")
	res, err := gitlab.Release(context.Background(), f.cfg())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || f.srv.Uploads() != 1 {
		t.Errorf("created=%v uploads=%d", res.Created, f.srv.Uploads())
	}
	if files := f.srv.Files(projectID, "hello-web", "1.4.0"); len(files) != 1 || files[0].FileSHA256 != sha(t, f.deb) {
		t.Errorf("the retried upload stored %+v", files)
	}
}

func TestPersistent5xxGivesUp(t *testing.T) {
	f := newFixture(t)
	f.srv.Fail(http.MethodGet, "/packages", http.StatusServiceUnavailable, 100)
	c := f.cfg()
	c.RetryMax = 2
	_, err := gitlab.Release(context.Background(), c)
	assertOneSentence(t, err, "GitLab kept answering 503 Service Unavailable")
	if n := len(f.srv.Requests()); n != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", n)
	}
}

func TestForbidden(t *testing.T) {
	f := newFixture(t)
	f.srv.AddJobToken("glcbt-reporter", gitlabtest.Reporter)
	c := f.cfg()
	c.Token = "glcbt-reporter"
	_, err := gitlab.Release(context.Background(), c)
	assertOneSentence(t, err, "the token may not do this in project 42 (403 Forbidden: 403 Forbidden); it needs at least the Developer role")
}

func TestConflictMessage(t *testing.T) {
	f := newFixture(t)
	// Somebody else creates the release between our GET and POST.
	f.srv.Fail(http.MethodPost, "/releases", http.StatusConflict, 1)
	_, err := gitlab.Release(context.Background(), f.cfg())
	assertOneSentence(t, err, "creating release v1.4.0 failed: GitLab rejected the request (409 Conflict: 409 Conflict)")
}

func TestSameNamedLinkIsTakenOver(t *testing.T) {
	f := newFixture(t)
	if _, err := gitlab.Release(context.Background(), f.cfg()); err != nil {
		t.Fatal(err)
	}
	// A hand-made link already has the file's name: it is pointed at the
	// registry, not duplicated.
	f.srv.AddLink(projectID, "v1.4.0", gitlabtest.Link{Name: "hello-web-extra_1.4.0-1_all.deb", URL: "https://example.org/x", LinkType: "other"})
	extra := makeDeb(t, f.dir, "hello-web-extra", "1.4.0", "1", "two")
	res, err := gitlab.Release(context.Background(), f.cfg(extra))
	if err != nil || res.Assets[0].Link != "updated" {
		t.Fatalf("%v %+v", err, res)
	}
	if _, links := f.srv.Release(projectID, "v1.4.0"); len(links) != 2 || links[1].LinkType != "package" {
		t.Errorf("links: %+v", links)
	}
}

func TestValidationMessage(t *testing.T) {
	f := newFixture(t)
	if _, err := gitlab.Release(context.Background(), f.cfg()); err != nil {
		t.Fatal(err)
	}
	// A hand-made link under another name already uses the URL our link
	// needs: GitLab's 400 body names the field, and so does our sentence.
	extra := makeDeb(t, f.dir, "hello-web-extra", "1.4.0", "1", "two")
	url := f.srv.APIURL() + "/projects/42/packages/generic/hello-web-extra/1%2E4%2E0/hello-web-extra_1%2E4%2E0-1_all%2Edeb"
	f.srv.AddLink(projectID, "v1.4.0", gitlabtest.Link{Name: "the extra", URL: url, LinkType: "other"})
	_, err := gitlab.Release(context.Background(), f.cfg(extra))
	assertOneSentence(t, err, "linking hello-web-extra_1.4.0-1_all.deb to release v1.4.0 failed: GitLab rejected the request (400 Bad Request: url has already been taken)")
}

func TestMissingTagNeedsRef(t *testing.T) {
	f := newFixture(t, "v0.9")
	c := f.cfg()
	c.Ref = ""
	_, err := gitlab.Release(context.Background(), c)
	assertOneSentence(t, err, "creating release v1.4.0 failed: GitLab rejected the request (422 Unprocessable Entity: Ref is not specified)")
	c.Ref = "0123abcd"
	if res, err := gitlab.Release(context.Background(), c); err != nil || !res.Created {
		t.Fatalf("with a ref: %v", err)
	}
}

func TestTagMustMatchPackage(t *testing.T) {
	f := newFixture(t, "v1.4.1")
	c := f.cfg()
	c.Tag = "v1.4.1"
	_, err := gitlab.Release(context.Background(), c)
	assertOneSentence(t, err, "tag v1.4.1 does not match version 1.4.0 of hello-web_1.4.0-1_all.deb")
	if len(f.srv.Requests()) != 0 {
		t.Error("nothing may be sent when the tag is wrong")
	}
}

func TestPreReleaseNames(t *testing.T) {
	f := newFixture(t, "v2.0rc1")
	d := makeDeb(t, f.dir, "hello-web", "2.0~rc1", "1", "rc")
	c := f.cfg(d)
	c.Tag = "v2.0rc1"
	res, err := gitlab.Release(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	a := res.Assets[0]
	// '~' is not allowed in registry file names; the link keeps the real name.
	if a.PackageVersion != "2.0rc1" || a.FileName != "hello-web_2.0-rc1-1_all.deb" || a.Name != "hello-web_2.0~rc1-1_all.deb" {
		t.Errorf("asset %+v", a)
	}
}

func TestMissingSettings(t *testing.T) {
	_, err := gitlab.Release(context.Background(), gitlab.ConfigFromEnv(func(string) string { return "" }))
	assertOneSentence(t, err, "no .deb files to release")
	f := newFixture(t)
	for _, c := range []struct {
		unset func(*gitlab.Config)
		want  string
	}{
		{func(c *gitlab.Config) { c.APIURL = "" }, "no GitLab API URL: pass --gitlab-url"},
		{func(c *gitlab.Config) { c.Project = "" }, "no GitLab project: pass --project"},
		{func(c *gitlab.Config) { c.Tag = "" }, "no tag to release: pass --tag"},
		{func(c *gitlab.Config) { c.Token = "" }, "no GitLab token: set GITLAB_TOKEN"},
	} {
		cfg := f.cfg()
		c.unset(&cfg)
		_, err := gitlab.Release(context.Background(), cfg)
		assertOneSentence(t, err, c.want)
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("%d requests sent without complete settings", n)
	}
}

func TestConfigFromEnvPrefersGitLabToken(t *testing.T) {
	env := map[string]string{"CI_JOB_TOKEN": "job", "GITLAB_TOKEN": "pat"}
	c := gitlab.ConfigFromEnv(func(k string) string { return env[k] })
	if c.Token != "pat" || c.JobToken {
		t.Errorf("%+v", c)
	}
	delete(env, "GITLAB_TOKEN")
	if c = gitlab.ConfigFromEnv(func(k string) string { return env[k] }); c.Token != "job" || !c.JobToken {
		t.Errorf("%+v", c)
	}
}

func TestRegistryNames(t *testing.T) {
	for in, want := range map[string]string{"v1.4.0": "1.4.0", "1.5.0rc1": "1.5.0rc1", "v2!1.0": "2-1.0", "v1.0+local.1": "1.0+local.1"} {
		if got := gitlab.RegistryVersion(in); got != want {
			t.Errorf("RegistryVersion(%q) = %q, want %q", in, got, want)
		}
	}
	if got := gitlab.RegistryFileName("a_1.0~rc1-1_all.deb"); got != "a_1.0-rc1-1_all.deb" {
		t.Errorf("RegistryFileName = %q", got)
	}
}

// assertOneSentence checks the error says what is expected, on one line,
// without a JSON dump.
func assertOneSentence(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	msg := err.Error()
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not contain %q", msg, want)
	}
	if strings.ContainsAny(msg, "\n{}") {
		t.Errorf("error is not one plain sentence: %q", msg)
	}
}
