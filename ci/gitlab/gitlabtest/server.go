// Package gitlabtest is a fake GitLab for tests: an httptest server that
// implements the few REST endpoints debship uses, the way GitLab's
// documentation describes them. It is the one fake of this API in the
// project; keep it faithful to these pages rather than to the client.
//
//   - REST basics: authentication headers (PRIVATE-TOKEN, JOB-TOKEN,
//     Authorization: Bearer), URL-encoded project paths (group%2Fproject),
//     status codes and error bodies ({"message": ...} / {"error": ...}),
//     offset pagination (page, per_page ≤ 100, X-Page, X-Per-Page,
//     X-Next-Page, X-Prev-Page, X-Total, X-Total-Pages, Link):
//     https://docs.gitlab.com/api/rest/
//     https://docs.gitlab.com/api/rest/authentication/
//     https://docs.gitlab.com/api/rest/troubleshooting/
//   - Generic packages: PUT and GET
//     /projects/:id/packages/generic/:package_name/:package_version/:file_name
//     (select=package_file returns the stored file; name and file name
//     [A-Za-z0-9._+-]+, version [\w+.-]+ without "..", as in GitLab's
//     Gitlab::Regex::Packages): https://docs.gitlab.com/user/packages/generic_packages/
//   - Packages API: GET /projects/:id/packages (package_type, package_name
//     fuzzy, package_version) and GET /projects/:id/packages/:package_id/package_files:
//     https://docs.gitlab.com/api/packages/
//   - Releases: GET/POST /projects/:id/releases, GET/PUT
//     /projects/:id/releases/:tag_name: https://docs.gitlab.com/api/releases/
//   - Release links: GET/POST /projects/:id/releases/:tag_name/assets/links,
//     PUT /projects/:id/releases/:tag_name/assets/links/:link_id:
//     https://docs.gitlab.com/api/releases/links/
//   - Job artifacts: GET /projects/:id/jobs/artifacts/:ref_name/download?job=name
//     (the archive of the newest successful job of that name for the ref):
//     https://docs.gitlab.com/api/job_artifacts/#download-the-artifacts-archive
//   - CI/CD job token (accepted by all of the above, not by the three
//     below): https://docs.gitlab.com/ci/jobs/ci_job_token/
//   - Pipelines: GET /projects/:id/pipelines/:pipeline_id (ci.go):
//     https://docs.gitlab.com/api/pipelines/#get-a-single-pipeline
//   - Jobs: GET /projects/:id/jobs/:job_id (ci.go):
//     https://docs.gitlab.com/api/jobs/#get-a-single-job
//   - Tags: GET /projects/:id/repository/tags/:tag_name (ci.go; commit.id
//     is the commit, target the tag object of an annotated tag):
//     https://docs.gitlab.com/api/tags/#get-a-single-repository-tag
//   - Webhook deliveries (hooks.go: GitLab as the sender, not the server):
//     https://docs.gitlab.com/user/project/integrations/webhooks/
package gitlabtest

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Role of a token's user in the project (only what matters here).
type Role int

const (
	Reporter  Role = 20 // may read, may not publish or release
	Developer Role = 30 // may publish packages and create releases
)

// Server is a fake GitLab. Create it with New; its fields are guarded by
// mu and are read by the tests through the accessor methods.
type Server struct {
	*httptest.Server

	// MaxPerPage caps per_page like GitLab does (100); tests lower it to
	// make every list span several pages.
	MaxPerPage int

	mu       sync.Mutex
	projects map[string]*Project // by numeric ID
	tokens   map[string]token
	faults   []*fault
	requests []Request
	nextID   int64
}

// Project is one project of the fake instance.
type Project struct {
	ID       int64
	Path     string            // "group/project"
	Tags     map[string]string // tag → the commit it points at
	Packages []*Package
	Releases map[string]*Release
	// Artifacts are job artifacts archives (zip) by ref and job name.
	Artifacts map[artifactKey][]byte
	Pipelines map[int64]*Pipeline
	Jobs      map[int64]*CIJob
}

type artifactKey struct{ ref, job string }

// Package is a generic package with its files.
type Package struct {
	ID      int64          `json:"id"`
	Name    string         `json:"name"`
	Version string         `json:"version"`
	Type    string         `json:"package_type"`
	Status  string         `json:"status"`
	Files   []*PackageFile `json:"-"`
}

// PackageFile is one uploaded file.
type PackageFile struct {
	ID         int64  `json:"id"`
	PackageID  int64  `json:"package_id"`
	FileName   string `json:"file_name"`
	Size       int64  `json:"size"`
	FileMD5    string `json:"file_md5"`
	FileSHA1   string `json:"file_sha1"`
	FileSHA256 string `json:"file_sha256"`
	data       []byte
}

// Release is a project release.
type Release struct {
	TagName     string  `json:"tag_name"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Links       []*Link `json:"-"`
}

// Link is a release asset link.
type Link struct {
	ID              int64  `json:"id"`
	Name            string `json:"name"`
	URL             string `json:"url"`
	DirectAssetPath string `json:"-"`
	LinkType        string `json:"link_type"`
}

// Request is one request the server saw, for assertions. It records which
// authentication header was used, never the token.
type Request struct {
	Method string
	Path   string // escaped, as sent
	Auth   string // "PRIVATE-TOKEN", "JOB-TOKEN", "Bearer" or ""
	Status int
}

type token struct {
	role Role
	job  bool // a CI job token: only valid in the JOB-TOKEN header
}

type fault struct {
	method, pathContains string
	status, left         int
	retryAfter           string
}

// New starts a fake GitLab. Close it when done.
func New() *Server {
	s := &Server{
		MaxPerPage: 100,
		projects:   map[string]*Project{},
		tokens:     map[string]token{},
		nextID:     100,
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// APIURL is the base of the REST API, like CI_API_V4_URL.
func (s *Server) APIURL() string { return s.URL + "/api/v4" }

// AddProject creates a project with the given path and existing tags
// (each at a commit of its own, see CommitOf).
func (s *Server) AddProject(id int64, path string, tags ...string) *Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &Project{ID: id, Path: path, Tags: map[string]string{}, Releases: map[string]*Release{}, Artifacts: map[artifactKey][]byte{},
		Pipelines: map[int64]*Pipeline{}, Jobs: map[int64]*CIJob{}}
	for _, t := range tags {
		p.Tags[t] = CommitOf(t)
	}
	s.projects[strconv.FormatInt(id, 10)] = p
	return p
}

// AddToken registers an access token (PRIVATE-TOKEN or Bearer).
func (s *Server) AddToken(tok string, role Role) { s.addToken(tok, token{role: role}) }

// AddJobToken registers a CI job token (JOB-TOKEN), which acts with the
// permissions of the user who started the job.
func (s *Server) AddJobToken(tok string, role Role) { s.addToken(tok, token{role: role, job: true}) }

func (s *Server) addToken(tok string, t token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = t
}

// Fail makes the next n requests whose method is method and whose path
// contains pathContains answer status (with an error body) before the
// request is handled normally again.
func (s *Server) Fail(method, pathContains string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, pathContains: pathContains, status: status, left: n})
}

// Throttle makes the next n matching requests answer 429 Too Many Requests
// with a Retry-After header of retryAfter seconds, like GitLab's rate limits.
func (s *Server) Throttle(method, pathContains string, n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, pathContains: pathContains, status: http.StatusTooManyRequests, left: n, retryAfter: retryAfter})
}

// Requests returns the requests seen so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Uploads counts the PUT requests that stored a generic package file.
func (s *Server) Uploads() int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodPut && strings.Contains(r.Path, "/packages/generic/") && r.Status == http.StatusCreated {
			n++
		}
	}
	return n
}

// Files returns the files of a generic package, in upload order.
func (s *Server) Files(projectID int64, name, version string) []PackageFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PackageFile
	p := s.projects[strconv.FormatInt(projectID, 10)]
	for _, pkg := range p.Packages {
		if pkg.Name == name && pkg.Version == version {
			for _, f := range pkg.Files {
				out = append(out, *f)
			}
		}
	}
	return out
}

// Release returns a copy of a release and its links, or nil.
func (s *Server) Release(projectID int64, tag string) (*Release, []Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.projects[strconv.FormatInt(projectID, 10)].Releases[tag]
	if r == nil {
		return nil, nil
	}
	c := *r
	var links []Link
	for _, l := range r.Links {
		links = append(links, *l)
	}
	c.Links = nil
	return &c, links
}

// AddLink adds a link to a release directly, as a user would in the UI.
func (s *Server) AddLink(projectID int64, tag string, l Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.projects[strconv.FormatInt(projectID, 10)].Releases[tag]
	s.nextID++
	l.ID = s.nextID
	r.Links = append(r.Links, &l)
}

// --- HTTP ---

type reqCtx struct {
	w       http.ResponseWriter
	r       *http.Request
	segs    []string // unescaped path segments after /api/v4/
	tok     token
	project *Project
	status  int
}

func (c *reqCtx) json(status int, v any) {
	c.status = status
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	json.NewEncoder(c.w).Encode(v)
}

// message answers with GitLab's usual error body.
func (c *reqCtx) message(status int, msg any) { c.json(status, map[string]any{"message": msg}) }

// developer says whether the token may change the project (Developer or
// more), answering 403 when it may not.
func (c *reqCtx) developer() bool {
	if c.tok.role < Developer {
		c.message(http.StatusForbidden, "403 Forbidden")
		return false
	}
	return true
}

// release is the project's release of tag, or nil once it has answered 404.
func (c *reqCtx) release(tag string) *Release {
	r := c.project.Releases[tag]
	if r == nil {
		c.message(http.StatusNotFound, "404 Not Found")
	}
	return r
}

// invalid answers like Grape's parameter validation does.
func (c *reqCtx) invalid(param string) {
	c.json(http.StatusBadRequest, map[string]string{"error": param + " is invalid"})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	c := &reqCtx{w: w, r: r}
	auth := ""
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.EscapedPath(), Auth: auth, Status: c.status})
		s.mu.Unlock()
	}()
	// Split the escaped path so that an encoded project path
	// ("group%2Fproject") stays one segment, as in GitLab's router.
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/api/v4/")
	if raw == r.URL.EscapedPath() {
		c.message(http.StatusNotFound, "404 Not Found")
		return
	}
	for _, seg := range strings.Split(raw, "/") {
		u, err := url.PathUnescape(seg)
		if err != nil {
			c.message(http.StatusBadRequest, "400 Bad request - malformed path")
			return
		}
		c.segs = append(c.segs, u)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.left > 0 && f.method == r.Method && strings.Contains(r.URL.EscapedPath(), f.pathContains) {
			f.left--
			io.Copy(io.Discard, r.Body)
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			c.message(f.status, fmt.Sprintf("%d %s", f.status, http.StatusText(f.status)))
			return
		}
	}

	var tok string
	var job bool
	switch {
	case r.Header.Get("PRIVATE-TOKEN") != "":
		tok, auth = r.Header.Get("PRIVATE-TOKEN"), "PRIVATE-TOKEN"
	case r.Header.Get("JOB-TOKEN") != "":
		tok, auth, job = r.Header.Get("JOB-TOKEN"), "JOB-TOKEN", true
	case strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		tok, auth = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "Bearer"
	}
	t, ok := s.tokens[tok]
	if !ok || t.job != job {
		c.message(http.StatusUnauthorized, "401 Unauthorized")
		return
	}
	c.tok = t

	if len(c.segs) < 2 || c.segs[0] != "projects" {
		c.message(http.StatusNotFound, "404 Not Found")
		return
	}
	c.project = s.findProject(c.segs[1])
	if c.project == nil {
		c.message(http.StatusNotFound, "404 Project Not Found")
		return
	}
	rest := c.segs[2:]
	switch {
	case len(rest) == 5 && rest[0] == "packages" && rest[1] == "generic":
		s.generic(c, rest[2], rest[3], rest[4])
	case len(rest) == 1 && rest[0] == "packages" && r.Method == http.MethodGet:
		s.listPackages(c)
	case len(rest) == 3 && rest[0] == "packages" && rest[2] == "package_files" && r.Method == http.MethodGet:
		s.listPackageFiles(c, rest[1])
	case len(rest) == 4 && rest[0] == "jobs" && rest[1] == "artifacts" && rest[3] == "download" && r.Method == http.MethodGet:
		s.artifacts(c, rest[2])
	case len(rest) == 2 && rest[0] == "pipelines" && r.Method == http.MethodGet:
		s.pipeline(c, rest[1])
	case len(rest) == 2 && rest[0] == "jobs" && r.Method == http.MethodGet:
		s.ciJob(c, rest[1])
	case len(rest) == 3 && rest[0] == "repository" && rest[1] == "tags" && r.Method == http.MethodGet:
		s.tag(c, rest[2])
	case len(rest) == 1 && rest[0] == "releases" && r.Method == http.MethodPost:
		s.createRelease(c)
	case len(rest) == 2 && rest[0] == "releases":
		s.release(c, rest[1])
	case len(rest) == 4 && rest[0] == "releases" && rest[2] == "assets" && rest[3] == "links":
		s.links(c, rest[1])
	case len(rest) == 5 && rest[0] == "releases" && rest[2] == "assets" && rest[3] == "links" && r.Method == http.MethodPut:
		s.updateLink(c, rest[1], rest[4])
	default:
		c.message(http.StatusNotFound, "404 Not Found")
	}
}

func (s *Server) findProject(id string) *Project {
	if p := s.projects[id]; p != nil {
		return p
	}
	for _, p := range s.projects {
		if p.Path == id {
			return p
		}
	}
	return nil
}

func (s *Server) webURL(p *Project) string { return s.URL + "/" + p.Path }

var (
	genericNameRE    = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)
	genericVersionRE = regexp.MustCompile(`^[A-Za-z0-9_+.-]+$`)
)

func (s *Server) generic(c *reqCtx, name, version, file string) {
	switch {
	case !genericNameRE.MatchString(name):
		c.invalid("package_name")
		return
	case !genericVersionRE.MatchString(version) || strings.Contains(version, ".."):
		c.invalid("package_version")
		return
	case !genericNameRE.MatchString(file):
		c.invalid("file_name")
		return
	}
	p := c.project
	switch c.r.Method {
	case http.MethodGet:
		for _, pkg := range p.Packages {
			if pkg.Name == name && pkg.Version == version {
				// The newest file of that name wins, as in GitLab.
				for i := len(pkg.Files) - 1; i >= 0; i-- {
					if pkg.Files[i].FileName == file {
						c.status = http.StatusOK
						c.w.Header().Set("Content-Type", "application/octet-stream")
						c.w.Write(pkg.Files[i].data)
						return
					}
				}
			}
		}
		c.message(http.StatusNotFound, "404 Package Not Found")
	case http.MethodPut:
		if !c.developer() {
			return
		}
		data, err := io.ReadAll(c.r.Body)
		if err != nil {
			c.message(http.StatusBadRequest, "400 Bad request - could not read the file")
			return
		}
		f := s.storeFile(p, name, version, file, data)
		if c.r.URL.Query().Get("select") == "package_file" {
			c.json(http.StatusCreated, f)
			return
		}
		c.message(http.StatusCreated, "201 Created")
	default:
		c.message(http.StatusMethodNotAllowed, "405 Method Not Allowed")
	}
}

// storeFile adds a file to the generic package name/version of p, creating
// the package if needed. Called with s.mu held.
func (s *Server) storeFile(p *Project, name, version, file string, data []byte) *PackageFile {
	var pkg *Package
	for _, q := range p.Packages {
		if q.Name == name && q.Version == version {
			pkg = q
		}
	}
	if pkg == nil {
		s.nextID++
		pkg = &Package{ID: s.nextID, Name: name, Version: version, Type: "generic", Status: "default"}
		p.Packages = append(p.Packages, pkg)
	}
	m, s1, s256 := md5.Sum(data), sha1.Sum(data), sha256.Sum256(data)
	s.nextID++
	f := &PackageFile{
		ID: s.nextID, PackageID: pkg.ID, FileName: file, Size: int64(len(data)),
		FileMD5: hex.EncodeToString(m[:]), FileSHA1: hex.EncodeToString(s1[:]), FileSHA256: hex.EncodeToString(s256[:]),
		data: data,
	}
	// Duplicate file names are allowed by default (a new file is added).
	pkg.Files = append(pkg.Files, f)
	return f
}

func (s *Server) listPackages(c *reqCtx) {
	q := c.r.URL.Query()
	var out []any
	for _, pkg := range c.project.Packages {
		if t := q.Get("package_type"); t != "" && pkg.Type != t {
			continue
		}
		if n := q.Get("package_name"); n != "" && !strings.Contains(pkg.Name, n) { // fuzzy, as documented
			continue
		}
		if v := q.Get("package_version"); v != "" && pkg.Version != v {
			continue
		}
		out = append(out, pkg)
	}
	s.paginate(c, out)
}

func (s *Server) listPackageFiles(c *reqCtx, id string) {
	for _, pkg := range c.project.Packages {
		if strconv.FormatInt(pkg.ID, 10) == id {
			var out []any
			for _, f := range pkg.Files {
				out = append(out, f)
			}
			s.paginate(c, out)
			return
		}
	}
	c.message(http.StatusNotFound, "404 Package Not Found")
}

// paginate answers one page of items with GitLab's pagination headers.
func (s *Server) paginate(c *reqCtx, items []any) {
	q := c.r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 20
	}
	per = min(per, s.MaxPerPage)
	page, _ := strconv.Atoi(q.Get("page"))
	if page <= 0 {
		page = 1
	}
	total := len(items)
	pages := max((total+per-1)/per, 1)
	from, to := min((page-1)*per, total), min(page*per, total)
	h := c.w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Total", strconv.Itoa(total))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	h.Set("X-Prev-Page", "")
	h.Set("X-Next-Page", "")
	linkFor := func(p int, rel string) string {
		u := *c.r.URL
		qq := u.Query()
		qq.Set("page", strconv.Itoa(p))
		qq.Set("per_page", strconv.Itoa(per))
		u.RawQuery = qq.Encode()
		return fmt.Sprintf("<%s%s>; rel=%q", s.URL, u.RequestURI(), rel)
	}
	var links []string
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
		links = append(links, linkFor(page-1, "prev"))
	}
	if page < pages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
		links = append(links, linkFor(page+1, "next"))
	}
	links = append(links, linkFor(1, "first"), linkFor(pages, "last"))
	h.Set("Link", strings.Join(links, ", "))
	page1 := items[from:to]
	if page1 == nil {
		page1 = []any{}
	}
	c.json(http.StatusOK, page1)
}

func (s *Server) releaseJSON(p *Project, r *Release) map[string]any {
	var links []any
	for _, l := range r.Links {
		links = append(links, s.linkJSON(p, r, l))
	}
	if links == nil {
		links = []any{}
	}
	return map[string]any{
		"tag_name":    r.TagName,
		"name":        r.Name,
		"description": r.Description,
		"created_at":  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"assets":      map[string]any{"count": len(links), "links": links, "sources": []any{}},
		"_links": map[string]string{
			"self":     s.webURL(p) + "/-/releases/" + url.PathEscape(r.TagName),
			"edit_url": s.webURL(p) + "/-/releases/" + url.PathEscape(r.TagName) + "/edit",
		},
	}
}

func (s *Server) linkJSON(p *Project, r *Release, l *Link) map[string]any {
	direct := l.URL
	if l.DirectAssetPath != "" {
		direct = s.webURL(p) + "/-/releases/" + url.PathEscape(r.TagName) + "/downloads" + l.DirectAssetPath
	}
	return map[string]any{
		"id": l.ID, "name": l.Name, "url": l.URL, "direct_asset_url": direct,
		"link_type": l.LinkType, "external": !strings.HasPrefix(l.URL, s.URL),
	}
}

type linkParams struct {
	Name            *string `json:"name"`
	URL             *string `json:"url"`
	DirectAssetPath *string `json:"direct_asset_path"`
	FilePath        *string `json:"filepath"` // deprecated name of direct_asset_path
	LinkType        *string `json:"link_type"`
}

func (s *Server) createRelease(c *reqCtx) {
	if !c.developer() {
		return
	}
	var in struct {
		TagName     string `json:"tag_name"`
		Name        string `json:"name"`
		Description string `json:"description"`
		Ref         string `json:"ref"`
		Assets      struct {
			Links []linkParams `json:"links"`
		} `json:"assets"`
	}
	if err := json.NewDecoder(c.r.Body).Decode(&in); err != nil || in.TagName == "" {
		c.json(http.StatusBadRequest, map[string]string{"error": "tag_name is missing"})
		return
	}
	p := c.project
	if p.Releases[in.TagName] != nil {
		c.message(http.StatusConflict, "Release already exists")
		return
	}
	if _, ok := p.Tags[in.TagName]; !ok {
		if in.Ref == "" {
			c.message(http.StatusUnprocessableEntity, "Ref is not specified")
			return
		}
		p.Tags[in.TagName] = CommitOf(in.Ref)
	}
	r := &Release{TagName: in.TagName, Name: in.Name, Description: in.Description}
	if r.Name == "" {
		r.Name = in.TagName
	}
	for _, lp := range in.Assets.Links {
		l, msg := s.newLink(r, nil, lp)
		if msg != nil {
			c.message(http.StatusBadRequest, msg)
			return
		}
		r.Links = append(r.Links, l)
	}
	p.Releases[in.TagName] = r
	c.json(http.StatusCreated, s.releaseJSON(p, r))
}

// linkFromBody reads a link's parameters from the request body and builds
// the link (a new one, or old changed), answering 400 as GitLab does when the
// body or a parameter is bad; ok is false once it has answered.
func (s *Server) linkFromBody(c *reqCtx, r *Release, old *Link) (l *Link, ok bool) {
	var lp linkParams
	if err := json.NewDecoder(c.r.Body).Decode(&lp); err != nil {
		c.json(http.StatusBadRequest, map[string]string{"error": "body is invalid"})
		return nil, false
	}
	l, msg := s.newLink(r, old, lp)
	if msg != nil {
		c.message(http.StatusBadRequest, msg)
		return nil, false
	}
	return l, true
}

// newLink validates link parameters like GitLab's Releases::Link model:
// name and url are required and unique within the release, the url is
// http(s), the direct asset path starts with "/". old is the link being
// updated, or nil.
func (s *Server) newLink(r *Release, old *Link, lp linkParams) (*Link, any) {
	l := &Link{LinkType: "other"}
	if old != nil {
		c := *old
		l = &c
	}
	if lp.Name != nil {
		l.Name = *lp.Name
	}
	if lp.URL != nil {
		l.URL = *lp.URL
	}
	if lp.FilePath != nil {
		l.DirectAssetPath = *lp.FilePath
	}
	if lp.DirectAssetPath != nil {
		l.DirectAssetPath = *lp.DirectAssetPath
	}
	if lp.LinkType != nil {
		l.LinkType = *lp.LinkType
	}
	errs := map[string][]string{}
	if l.Name == "" {
		errs["name"] = append(errs["name"], "can't be blank")
	}
	if u, err := url.Parse(l.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		errs["url"] = append(errs["url"], "is blocked: Only allowed schemes are http, https")
	}
	if l.DirectAssetPath != "" && !strings.HasPrefix(l.DirectAssetPath, "/") {
		errs["filepath"] = append(errs["filepath"], "is in an invalid format")
	}
	switch l.LinkType {
	case "other", "runbook", "image", "package":
	default:
		errs["link_type"] = append(errs["link_type"], "is not included in the list")
	}
	for _, o := range r.Links {
		if old != nil && o.ID == old.ID {
			continue
		}
		if o.Name == l.Name {
			errs["name"] = append(errs["name"], "has already been taken")
		}
		if o.URL == l.URL {
			errs["url"] = append(errs["url"], "has already been taken")
		}
		if l.DirectAssetPath != "" && o.DirectAssetPath == l.DirectAssetPath {
			errs["filepath"] = append(errs["filepath"], "has already been taken")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if old == nil {
		s.nextID++
		l.ID = s.nextID
	}
	return l, nil
}

func (s *Server) release(c *reqCtx, tag string) {
	p, r := c.project, c.release(tag)
	if r == nil {
		return
	}
	switch c.r.Method {
	case http.MethodGet:
		c.json(http.StatusOK, s.releaseJSON(p, r))
	case http.MethodPut:
		if !c.developer() {
			return
		}
		var in struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
		}
		if err := json.NewDecoder(c.r.Body).Decode(&in); err != nil {
			c.json(http.StatusBadRequest, map[string]string{"error": "body is invalid"})
			return
		}
		if in.Name != nil {
			r.Name = *in.Name
		}
		if in.Description != nil {
			r.Description = *in.Description
		}
		c.json(http.StatusOK, s.releaseJSON(p, r))
	default:
		c.message(http.StatusMethodNotAllowed, "405 Method Not Allowed")
	}
}

func (s *Server) links(c *reqCtx, tag string) {
	p, r := c.project, c.release(tag)
	if r == nil {
		return
	}
	switch c.r.Method {
	case http.MethodGet:
		ls := append([]*Link(nil), r.Links...)
		sort.Slice(ls, func(i, j int) bool { return ls[i].ID < ls[j].ID })
		var out []any
		for _, l := range ls {
			out = append(out, s.linkJSON(p, r, l))
		}
		s.paginate(c, out)
	case http.MethodPost:
		if !c.developer() {
			return
		}
		l, ok := s.linkFromBody(c, r, nil)
		if !ok {
			return
		}
		r.Links = append(r.Links, l)
		c.json(http.StatusCreated, s.linkJSON(p, r, l))
	default:
		c.message(http.StatusMethodNotAllowed, "405 Method Not Allowed")
	}
}

func (s *Server) updateLink(c *reqCtx, tag, id string) {
	p, r := c.project, c.release(tag)
	if r == nil {
		return
	}
	if !c.developer() {
		return
	}
	for i, old := range r.Links {
		if strconv.FormatInt(old.ID, 10) != id {
			continue
		}
		l, ok := s.linkFromBody(c, r, old)
		if !ok {
			return
		}
		r.Links[i] = l
		c.json(http.StatusOK, s.linkJSON(p, r, l))
		return
	}
	c.message(http.StatusNotFound, "404 Not Found")
}
