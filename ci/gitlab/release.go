// Package gitlab publishes .deb files as a GitLab release: each file is
// uploaded to the project's generic package registry and linked from the
// release of a tag. It uses GitLab's maintained Go client
// (gitlab.com/gitlab-org/api/client-go); its tests run it against the fake
// server in ci/gitlab/gitlabtest, which follows GitLab's REST API docs.
package gitlab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
)

// Config says where to publish what. In CI it comes from GitLab's
// predefined variables (see ConfigFromEnv); outside, from flags.
type Config struct {
	APIURL      string   // e.g. https://gitlab.com/api/v4 (CI_API_V4_URL)
	Project     string   // numeric ID or "group/project" path (CI_PROJECT_ID)
	Tag         string   // the release's tag (CI_COMMIT_TAG)
	Token       string   // never printed
	JobToken    bool     // Token is a CI job token (JOB-TOKEN header), else an access token (PRIVATE-TOKEN)
	Files       []string // .deb files to publish
	Name        string   // release title; default "<package> <version>"
	Description string   // release notes; default: the files and their SHA-256
	Ref         string   // commit to create the tag from if it does not exist yet
	Log         io.Writer

	// Retries of 429 and 5xx answers, with exponential backoff between
	// RetryWaitMin and RetryWaitMax. Zero values mean 4, 1s and 30s.
	RetryMax     int
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration
	HTTPClient   *http.Client // for tests; default: a pooled client

	// TokenHint and ProjectHint replace the advice given when GitLab
	// rejects the token or does not find the project, for callers whose
	// token and project come from elsewhere than GITLAB_TOKEN and
	// --project (the webhook receiver's configuration file).
	TokenHint   string
	ProjectHint string
}

// Result is what was published.
type Result struct {
	ReleaseURL string
	Created    bool // the release did not exist before
	Assets     []Asset
}

// Asset is one published file.
type Asset struct {
	Path           string // local .deb
	Name           string // the .deb's own file name, used as the link's name
	SHA256         string
	PackageName    string // generic package name = Debian package name
	PackageVersion string // generic package version (from the tag)
	FileName       string // file name in the registry
	URL            string // download URL in the registry
	Uploaded       bool   // false when the same bytes were already there
	Link           string // "created", "updated" or "unchanged"
}

// The generic package registry's rules (GitLab's Gitlab::Regex::Packages:
// generic_package_file_name_regex and generic_package_version_regex). A
// Debian file name may contain '~' (1.0~rc1), which the registry refuses.
var (
	registryNameRE    = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)
	registryVersionRE = regexp.MustCompile(`^[A-Za-z0-9_+.-]+$`)
	notRegistryChar   = regexp.MustCompile(`[^A-Za-z0-9._+-]`)
)

// RegistryFileName is the name a .deb gets in the generic package registry:
// its own name with every character the registry refuses (in practice the
// '~' of a pre-release) replaced by '-'.
func RegistryFileName(debFile string) string {
	return notRegistryChar.ReplaceAllString(debFile, "-")
}

// RegistryVersion is the generic package version of a release tag: the tag
// without its leading "v" (1.4.0, 1.5.0rc1), made acceptable to the
// registry the same way as file names ("2!1.0" → "2-1.0").
func RegistryVersion(tag string) string {
	v := notRegistryChar.ReplaceAllString(strings.TrimPrefix(tag, "v"), "-")
	for strings.Contains(v, "..") {
		v = strings.ReplaceAll(v, "..", ".")
	}
	return v
}

type localDeb struct {
	debfile.Identity
	path, name string
	data       []byte
}

// readDeb reads the package name and version from the .deb itself: the
// file is the truth about what is released, whatever pyproject.toml says
// now.
func readDeb(path string) (*localDeb, error) {
	id, err := debfile.OpenDeb(path)
	if err != nil {
		return nil, fmt.Errorf("%s is not a readable .deb: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &localDeb{Identity: id, path: path, name: filepath.Base(path), data: data}, nil
}

// checkTag refuses to release a .deb under a tag of another version: a
// release v1.4.1 with a 1.4.0 package in it is a mistake nobody notices
// until a deploy.
func checkTag(tag string, d *localDeb) error {
	want, err := debversion.DebianVersion(tag)
	upstream := d.Upstream()
	same := err == nil && want == upstream
	if !same && err == nil {
		// debship writes 1.4.0 as 1.4 (equal under PEP 440); a .deb made
		// elsewhere may keep the zero, so compare under PEP 440 too.
		up, uerr := debversion.DebianVersion(upstream)
		same = uerr == nil && up == want
	}
	if !same {
		return fmt.Errorf("tag %s does not match version %s of %s; build the .deb from the tagged commit (or bump [project] version and tag again)", tag, upstream, d.name)
	}
	return nil
}

// Release uploads cfg.Files and creates or updates the release of cfg.Tag.
// Running it again for the same tag and files changes nothing: a file whose
// SHA-256 is already in the package is not uploaded again, and a link that
// exists is kept.
func Release(ctx context.Context, cfg Config) (*Result, error) {
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	// Local mistakes first: they need no GitLab to find.
	if len(cfg.Files) == 0 {
		return nil, fmt.Errorf("no .deb files to release: pass their paths, e.g. dist/*.deb")
	}
	var debs []*localDeb
	for _, f := range cfg.Files {
		d, err := readDeb(f)
		if err != nil {
			return nil, err
		}
		debs = append(debs, d)
	}
	switch {
	case cfg.APIURL == "":
		return nil, fmt.Errorf("no GitLab API URL: pass --gitlab-url https://gitlab.example.com (in CI, CI_API_V4_URL is used)")
	case cfg.Project == "":
		return nil, fmt.Errorf("no GitLab project: pass --project group/project (in CI, CI_PROJECT_ID is used)")
	case cfg.Tag == "":
		return nil, fmt.Errorf("no tag to release: pass --tag v1.2.3 (in CI, release jobs run on tags and CI_COMMIT_TAG is used)")
	case cfg.Token == "":
		return nil, fmt.Errorf("no GitLab token: set GITLAB_TOKEN to an access token with the api scope (in CI, CI_JOB_TOKEN is used)")
	}
	for _, d := range debs {
		if err := checkTag(cfg.Tag, d); err != nil {
			return nil, err
		}
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	r := &releaser{cfg: cfg, c: c, ctx: ctx, log: logw}
	res := &Result{}
	for _, d := range debs {
		a, err := r.upload(d)
		if err != nil {
			return nil, err
		}
		res.Assets = append(res.Assets, *a)
	}
	if err := r.release(res, debs); err != nil {
		return nil, err
	}
	return res, nil
}

func newClient(cfg Config) (*gl.Client, error) {
	retryMax := cfg.RetryMax
	if retryMax == 0 {
		retryMax = 4
	}
	minWait, maxWait := cfg.RetryWaitMin, cfg.RetryWaitMax
	if minWait == 0 {
		minWait = time.Second
	}
	if maxWait == 0 {
		maxWait = 30 * time.Second
	}
	opts := []gl.ClientOptionFunc{
		gl.WithBaseURL(cfg.APIURL),
		gl.WithCustomRetryMax(retryMax),
		gl.WithCustomBackoff(func(_, _ time.Duration, attempt int, resp *http.Response) time.Duration {
			return backoff(minWait, maxWait, attempt, resp)
		}),
		gl.WithUserAgent("debship"),
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, gl.WithHTTPClient(cfg.HTTPClient))
	}
	var c *gl.Client
	var err error
	if cfg.JobToken {
		c, err = gl.NewJobClient(cfg.Token, opts...)
	} else {
		c, err = gl.NewClient(cfg.Token, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("GitLab API URL %q: %v", cfg.APIURL, err)
	}
	return c, nil
}

// backoff waits exponentially longer after each failed attempt, bounded by
// maxWait; a 429 with Retry-After waits as long as GitLab asks (bounded too).
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			return min(time.Duration(s)*time.Second, maxWait)
		}
	}
	d := time.Duration(float64(minWait) * math.Pow(2, float64(attempt)))
	return min(d, maxWait)
}

type releaser struct {
	cfg Config
	c   *gl.Client
	ctx context.Context
	log io.Writer
}

func (r *releaser) logf(format string, a ...any) { fmt.Fprintf(r.log, format+"\n", a...) }

// packageURL is the download URL of a registry file, as GitLab documents it.
func (r *releaser) packageURL(name, version, file string) (string, error) {
	rel, err := r.c.GenericPackages.FormatPackageURL(r.cfg.Project, name, version, file)
	if err != nil {
		return "", err
	}
	return r.c.BaseURL().String() + rel, nil
}

// upload puts d into the generic package <pkg>/<version> unless a file of
// that name with the same SHA-256 is already there.
func (r *releaser) upload(d *localDeb) (*Asset, error) {
	a := &Asset{
		Path:           d.path,
		Name:           d.name,
		SHA256:         d.SHA256,
		PackageName:    d.Package,
		PackageVersion: RegistryVersion(r.cfg.Tag),
		FileName:       RegistryFileName(d.name),
	}
	if !registryNameRE.MatchString(a.PackageName) {
		return nil, fmt.Errorf("package name %q cannot be a generic package name (letters, digits, '.', '_', '+', '-' only)", a.PackageName)
	}
	if !registryVersionRE.MatchString(a.PackageVersion) {
		return nil, fmt.Errorf("tag %s gives the package version %q, which the generic package registry refuses", r.cfg.Tag, a.PackageVersion)
	}
	var err error
	if a.URL, err = r.packageURL(a.PackageName, a.PackageVersion, a.FileName); err != nil {
		return nil, err
	}
	existing, err := r.existingFiles(a.PackageName, a.PackageVersion)
	if err != nil {
		return nil, err
	}
	for _, f := range existing {
		if f.FileName != a.FileName {
			continue
		}
		if strings.EqualFold(f.FileSHA256, d.SHA256) {
			r.logf("%s: already in package %s %s with the same SHA-256, not uploaded again", d.name, a.PackageName, a.PackageVersion)
			return a, nil
		}
		return nil, fmt.Errorf("%s differs from the %s already published in package %s %s (SHA-256 %s there, %s here); published files are immutable: release a new version, or delete the package file in GitLab first", d.name, a.FileName, a.PackageName, a.PackageVersion, short(f.FileSHA256), short(d.SHA256))
	}
	what := fmt.Sprintf("uploading %s to package %s %s", d.name, a.PackageName, a.PackageVersion)
	sel := gl.SelectPackageFile
	f, resp, err := r.c.GenericPackages.PublishPackageFile(r.cfg.Project, a.PackageName, a.PackageVersion, a.FileName,
		bytes.NewReader(d.data), &gl.PublishPackageFileOptions{Select: &sel}, gl.WithContext(r.ctx))
	if err != nil {
		return nil, r.apiError(what, resp, err)
	}
	if f.FileSHA256 != "" && !strings.EqualFold(f.FileSHA256, d.SHA256) {
		return nil, fmt.Errorf("GitLab stored %s with SHA-256 %s, but the file has %s; the upload was corrupted, run the release again", a.FileName, short(f.FileSHA256), short(d.SHA256))
	}
	a.Uploaded = true
	r.logf("%s: uploaded to package %s %s", d.name, a.PackageName, a.PackageVersion)
	return a, nil
}

// existingFiles lists the files of the generic package name/version, all
// pages of it; none when the package does not exist yet.
func (r *releaser) existingFiles(name, version string) ([]*gl.PackageFile, error) {
	what := fmt.Sprintf("looking up package %s %s", name, version)
	var files []*gl.PackageFile
	opt := &gl.ListProjectPackagesOptions{
		ListOptions:    gl.ListOptions{PerPage: 100, Page: 1},
		PackageType:    gl.Ptr("generic"),
		PackageName:    gl.Ptr(name),
		PackageVersion: gl.Ptr(version),
	}
	for {
		pkgs, resp, err := r.c.Packages.ListProjectPackages(r.cfg.Project, opt, gl.WithContext(r.ctx))
		if err != nil {
			return nil, r.apiError(what, resp, err)
		}
		for _, p := range pkgs {
			// The name filter is a fuzzy search: keep exact matches only.
			if p.Name != name || p.Version != version || p.PackageType != "generic" {
				continue
			}
			fopt := &gl.ListPackageFilesOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
			for {
				fs, fresp, err := r.c.Packages.ListPackageFiles(r.cfg.Project, p.ID, fopt, gl.WithContext(r.ctx))
				if err != nil {
					return nil, r.apiError(what, fresp, err)
				}
				files = append(files, fs...)
				if fresp.NextPage == 0 {
					break
				}
				fopt.Page = fresp.NextPage
			}
		}
		if resp.NextPage == 0 {
			return files, nil
		}
		opt.Page = resp.NextPage
	}
}

// release creates the release with its links, or brings the links of an
// existing one up to date.
func (r *releaser) release(res *Result, debs []*localDeb) error {
	tag := r.cfg.Tag
	rel, resp, err := r.c.Releases.GetRelease(r.cfg.Project, tag, gl.WithContext(r.ctx))
	if err != nil && (resp == nil || resp.StatusCode != http.StatusNotFound) {
		return r.apiError("reading release "+tag, resp, err)
	}
	if err != nil { // 404: no release for this tag yet
		opt := &gl.CreateReleaseOptions{
			TagName:     gl.Ptr(tag),
			Name:        gl.Ptr(r.releaseName(debs)),
			Description: gl.Ptr(r.description(res)),
			Assets:      &gl.ReleaseAssetsOptions{},
		}
		if r.cfg.Ref != "" {
			opt.Ref = gl.Ptr(r.cfg.Ref)
		}
		for i := range res.Assets {
			a := &res.Assets[i]
			opt.Assets.Links = append(opt.Assets.Links, &gl.ReleaseAssetLinkOptions{
				Name:            gl.Ptr(a.Name),
				URL:             gl.Ptr(a.URL),
				DirectAssetPath: gl.Ptr(directAssetPath(a)),
				LinkType:        gl.Ptr(gl.PackageLinkType),
			})
			a.Link = "created"
		}
		rel, resp, err = r.c.Releases.CreateRelease(r.cfg.Project, opt, gl.WithContext(r.ctx))
		if err != nil {
			return r.apiError("creating release "+tag, resp, err)
		}
		res.Created = true
		res.ReleaseURL = rel.Links.Self
		r.logf("created release %s", tag)
		return nil
	}
	res.ReleaseURL = rel.Links.Self
	// An existing release keeps its title and notes (someone may have
	// edited them in GitLab) unless new ones were asked for.
	if r.cfg.Name != "" || r.cfg.Description != "" {
		opt := &gl.UpdateReleaseOptions{Name: gl.Ptr(rel.Name), Description: gl.Ptr(rel.Description)}
		if r.cfg.Name != "" {
			opt.Name = gl.Ptr(r.cfg.Name)
		}
		if r.cfg.Description != "" {
			opt.Description = gl.Ptr(r.cfg.Description)
		}
		if *opt.Name != rel.Name || *opt.Description != rel.Description {
			if _, resp, err := r.c.Releases.UpdateRelease(r.cfg.Project, tag, opt, gl.WithContext(r.ctx)); err != nil {
				return r.apiError("updating release "+tag, resp, err)
			}
			r.logf("updated the title and notes of release %s", tag)
		}
	}
	links, err := r.links(tag)
	if err != nil {
		return err
	}
	for i := range res.Assets {
		if err := r.syncLink(tag, &res.Assets[i], links); err != nil {
			return err
		}
	}
	return nil
}

// links lists every asset link of the release, all pages.
func (r *releaser) links(tag string) ([]*gl.ReleaseLink, error) {
	var all []*gl.ReleaseLink
	opt := &gl.ListReleaseLinksOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for {
		ls, resp, err := r.c.ReleaseLinks.ListReleaseLinks(r.cfg.Project, tag, opt, gl.WithContext(r.ctx))
		if err != nil {
			return nil, r.apiError("listing the links of release "+tag, resp, err)
		}
		all = append(all, ls...)
		if resp.NextPage == 0 {
			return all, nil
		}
		opt.Page = resp.NextPage
	}
}

// syncLink makes sure the release has exactly one link for a: found by its
// direct asset path or its name, fixed if it points elsewhere, created if
// missing.
func (r *releaser) syncLink(tag string, a *Asset, links []*gl.ReleaseLink) error {
	dap := directAssetPath(a)
	want := gl.CreateReleaseLinkOptions{Name: gl.Ptr(a.Name), URL: gl.Ptr(a.URL), DirectAssetPath: gl.Ptr(dap), LinkType: gl.Ptr(gl.PackageLinkType)}
	for _, l := range links {
		if !strings.HasSuffix(l.DirectAssetURL, "/downloads"+dap) && l.Name != a.Name {
			continue
		}
		if l.URL == a.URL && l.Name == a.Name && l.LinkType == gl.PackageLinkType {
			a.Link = "unchanged"
			return nil
		}
		// The update options are the create options under another type.
		u := gl.UpdateReleaseLinkOptions{Name: want.Name, URL: want.URL, DirectAssetPath: want.DirectAssetPath, LinkType: want.LinkType}
		_, resp, err := r.c.ReleaseLinks.UpdateReleaseLink(r.cfg.Project, tag, l.ID, &u, gl.WithContext(r.ctx))
		if err != nil {
			return r.apiError("updating the link of "+a.Name+" in release "+tag, resp, err)
		}
		a.Link = "updated"
		return nil
	}
	_, resp, err := r.c.ReleaseLinks.CreateReleaseLink(r.cfg.Project, tag, &want, gl.WithContext(r.ctx))
	if err != nil {
		return r.apiError("linking "+a.Name+" to release "+tag, resp, err)
	}
	a.Link = "created"
	return nil
}

// directAssetPath gives the file a stable address on the release page:
// <project>/-/releases/<tag>/downloads/packages/<file>.
func directAssetPath(a *Asset) string { return "/packages/" + a.FileName }

func (r *releaser) releaseName(debs []*localDeb) string {
	if r.cfg.Name != "" {
		return r.cfg.Name
	}
	if len(debs) == 1 {
		return debs[0].Package + " " + strings.TrimPrefix(r.cfg.Tag, "v")
	}
	return r.cfg.Tag
}

func (r *releaser) description(res *Result) string {
	if r.cfg.Description != "" {
		return r.cfg.Description
	}
	var b strings.Builder
	b.WriteString("Debian packages built by debship:\n\n")
	for _, a := range res.Assets {
		fmt.Fprintf(&b, "- `%s` (SHA-256 `%s`)\n", a.Name, a.SHA256)
	}
	return b.String()
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// ConfigFromEnv fills what GitLab CI provides: CI_API_V4_URL,
// CI_PROJECT_ID, CI_COMMIT_TAG and a token. GITLAB_TOKEN (an access token)
// wins over CI_JOB_TOKEN, so a project can give the release job more rights
// than the job token has; outside CI only GITLAB_TOKEN exists.
func ConfigFromEnv(getenv func(string) string) Config {
	c := Config{
		APIURL:  getenv("CI_API_V4_URL"),
		Project: getenv("CI_PROJECT_ID"),
		Tag:     getenv("CI_COMMIT_TAG"),
		Ref:     getenv("CI_COMMIT_SHA"),
	}
	if t := getenv("GITLAB_TOKEN"); t != "" {
		c.Token = t
	} else if t := getenv("CI_JOB_TOKEN"); t != "" {
		c.Token, c.JobToken = t, true
	}
	return c
}
