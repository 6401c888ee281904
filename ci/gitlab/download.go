package gitlab

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
)

// The download side of Release: the webhook receiver (ci/webhook) fetches
// the .deb of a released tag from the same places `debship release` and the
// generated pipeline put it. The package name, version and file naming are
// the ones Release uses (RegistryVersion, RegistryFileName), so the two
// cannot drift apart.

// FetchOptions says which .deb to fetch and where to put it.
type FetchOptions struct {
	Package string // Debian package name = generic package name
	Arch    string // Debian architecture of the target hosts; "_all.deb" files always match
	// Target is the Debian release of the target hosts ("debian-13"):
	// only a .deb whose version names it matches (a release holds one per
	// target). "" matches any, and then several targets are an error.
	Target   string
	Dir      string // where the .deb is written (created if missing)
	MaxBytes int64  // refuse larger downloads; zero means 2 GiB
}

// Fetched is a downloaded and checked .deb.
type Fetched struct {
	Path        string // the .deb in FetchOptions.Dir
	FileName    string // its name in the registry or the artifacts archive
	SHA256      string
	Size        int64
	PackageName string
	Version     string // the Debian version inside the .deb
	Source      string // "registry" or "artifacts"
	// Verified says what the file was checked against besides its own
	// control fields: the registry's SHA-256, or nothing for artifacts
	// (GitLab publishes no checksum for them).
	Verified string
}

const defaultMaxFetch = 2 << 30

// FetchPackage downloads the .deb of o.Package for cfg.Tag from the generic
// package registry: package <name>/<RegistryVersion(tag)>, the newest file
// named <name>_*_<arch>.deb or <name>_*_all.deb. The bytes must have the
// SHA-256 the registry lists for the file, and the .deb must be that package
// at the tag's version (the same check as Release). cfg.Token needs read
// access to the registry (an access token with read_api, Reporter role).
func FetchPackage(ctx context.Context, cfg Config, o FetchOptions) (*Fetched, error) {
	r, err := newFetcher(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	version := RegistryVersion(cfg.Tag)
	files, err := r.existingFiles(o.Package, version)
	if err != nil {
		return nil, err
	}
	f, err := pickFile(files, o.Package, o.Arch, o.Target)
	if err != nil {
		return nil, fmt.Errorf("package %s %s in the registry of project %s: %w", o.Package, version, cfg.Project, err)
	}
	if f == nil {
		var names []string
		for _, f := range files {
			names = append(names, f.FileName)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("the generic package registry of project %s has no package %s %s: did the release job of %s run (debship release)?", cfg.Project, o.Package, version, cfg.Tag)
		}
		return nil, fmt.Errorf("package %s %s in the registry of project %s has no .deb for %s (files: %s)", o.Package, version, cfg.Project, o.Arch, strings.Join(names, ", "))
	}
	rel, err := r.c.GenericPackages.FormatPackageURL(cfg.Project, o.Package, version, f.FileName)
	if err != nil {
		return nil, fmt.Errorf("package URL of %s: %w", f.FileName, err)
	}
	what := fmt.Sprintf("downloading %s of package %s %s", f.FileName, o.Package, version)
	out, err := r.download(what, rel, nil, f.FileName)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(out.SHA256, f.FileSHA256) {
		os.Remove(out.Path)
		return nil, fmt.Errorf("%s: the downloaded file has SHA-256 %s, but the registry lists %s; refusing to deploy it (a corrupted download or a tampered file)", what, short(out.SHA256), short(f.FileSHA256))
	}
	out.Source, out.Verified = "registry", "SHA-256 listed by the package registry"
	return r.check(out)
}

// FetchArtifact downloads the artifacts archive of the newest successful job
// named job in a pipeline of cfg.Tag and takes the .deb of o.Package out of
// it (the generated pipeline's build job keeps dist/*.deb as artifacts).
// GitLab lists no checksum for artifacts, so the .deb is only checked
// against itself: package name and the tag's version.
func FetchArtifact(ctx context.Context, cfg Config, job string, o FetchOptions) (*Fetched, error) {
	r, err := newFetcher(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	// GET /projects/:id/jobs/artifacts/:ref_name/download?job=name
	// (https://docs.gitlab.com/api/job_artifacts/#download-the-artifacts-archive)
	pid, err := projectPathSegment(cfg.Project)
	if err != nil {
		return nil, err
	}
	rel := fmt.Sprintf("projects/%s/jobs/artifacts/%s/download", pid, url.PathEscape(cfg.Tag))
	what := fmt.Sprintf("downloading the artifacts of job %s for %s", job, cfg.Tag)
	zipFile, err := r.download(what, rel, &gl.DownloadArtifactsFileOptions{Job: gl.Ptr(job)}, "artifacts.zip")
	if err != nil {
		return nil, err
	}
	defer os.Remove(zipFile.Path)
	zr, err := zip.OpenReader(zipFile.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: not a zip archive: %w", what, err)
	}
	defer zr.Close()
	var cands []*zip.File
	for _, zf := range zr.File {
		if zf.FileInfo().Mode().IsRegular() && matchesDeb(path.Base(zf.Name), o.Package, o.Arch, o.Target) {
			cands = append(cands, zf)
		}
	}
	if len(cands) != 1 {
		var names []string
		for _, zf := range cands {
			names = append(names, zf.Name)
		}
		if len(cands) == 0 {
			return nil, fmt.Errorf("%s: the archive holds no %s_*_%s.deb or _all.deb; does job %s keep dist/*.deb as artifacts?", what, o.Package, o.Arch, job)
		}
		return nil, fmt.Errorf("%s: the archive holds several candidate .debs (%s); keep only one per architecture and target, or name the nodes' release (target)", what, strings.Join(names, ", "))
	}
	zf := cands[0]
	if zf.UncompressedSize64 > uint64(r.max) {
		return nil, fmt.Errorf("%s: %s is %d bytes, more than the limit of %d", what, zf.Name, zf.UncompressedSize64, r.max)
	}
	out, err := r.extract(zf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out.Source, out.Verified = "artifacts", "package name and version only (GitLab lists no checksum for artifacts)"
	return r.check(out)
}

type fetcher struct {
	*releaser
	o   FetchOptions
	max int64
}

func newFetcher(ctx context.Context, cfg Config, o FetchOptions) (*fetcher, error) {
	switch {
	case cfg.APIURL == "":
		return nil, errors.New("no GitLab API URL to download from")
	case cfg.Project == "":
		return nil, errors.New("no GitLab project to download from")
	case cfg.Tag == "":
		return nil, errors.New("no tag to download the .deb of")
	case o.Package == "" || !registryNameRE.MatchString(o.Package):
		return nil, fmt.Errorf("package name %q cannot be a generic package name", o.Package)
	case o.Arch == "" || !registryNameRE.MatchString(o.Arch):
		return nil, fmt.Errorf("architecture %q is not a Debian architecture", o.Arch)
	case o.Dir == "":
		return nil, errors.New("no directory to download into")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("download directory: %w", err)
	}
	r, err := newReader(ctx, cfg)
	if err != nil {
		return nil, err
	}
	max := o.MaxBytes
	if max <= 0 {
		max = defaultMaxFetch
	}
	return &fetcher{releaser: r, o: o, max: max}, nil
}

// pickFile chooses the file to deploy among a registry package's files:
// the host's architecture before "all", and of several uploads of one name
// the newest (the one GitLab's download URL serves). Without a target,
// files for several Debian releases are an error: picking one would be a
// guess.
func pickFile(files []*gl.PackageFile, pkg, arch, target string) (*gl.PackageFile, error) {
	var best *gl.PackageFile
	rank := func(f *gl.PackageFile) int {
		if isDeb(f.FileName, pkg, arch) {
			return 2
		}
		return 1
	}
	targets := map[string]string{}
	for _, f := range files {
		if !matchesDeb(f.FileName, pkg, arch, target) {
			continue
		}
		targets[fileTarget(f.FileName)] = f.FileName
		if best == nil || rank(f) > rank(best) || (rank(f) == rank(best) && f.ID > best.ID) {
			best = f
		}
	}
	if len(targets) > 1 {
		var names []string
		for _, n := range targets {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("it holds .debs for several Debian releases (%s): name the nodes' release (target)", strings.Join(names, ", "))
	}
	return best, nil
}

// fileTarget is the release a .deb's file name says it is for ("" none).
func fileTarget(name string) string {
	parts := strings.Split(strings.TrimSuffix(name, ".deb"), "_")
	if len(parts) != 3 {
		return ""
	}
	r, _ := debversion.VersionTarget(parts[1])
	return r.Target
}

// matchesDeb reports whether name is a .deb of pkg for arch or for all,
// and for target unless that is "".
func matchesDeb(name, pkg, arch, target string) bool {
	if target != "" && fileTarget(name) != target {
		return false
	}
	return isDeb(name, pkg, arch) || isDeb(name, pkg, "all")
}

// isDeb reports whether name is the Debian file name of a .deb of pkg for
// arch, of any version (package names and architectures hold no pattern
// characters).
func isDeb(name, pkg, arch string) bool {
	ok, _ := path.Match(debfile.FileName(pkg, "*", arch), name)
	return ok
}

// projectPathSegment is the :id of a REST path: a number as it is, a path
// URL-encoded into one segment ("group%2Fproject").
func projectPathSegment(project string) (string, error) {
	if project == "" {
		return "", errors.New("no GitLab project")
	}
	return url.PathEscape(project), nil
}

// download streams rel into a temporary file in the download directory,
// hashing it on the way; transient failures (connection cut in the middle
// of the body) are retried a few times, each from the start.
func (r *fetcher) download(what, rel string, query any, name string) (*Fetched, error) {
	const attempts = 3
	var last error
	for i := 0; i < attempts; i++ {
		out, retry, err := r.downloadOnce(what, rel, query, name)
		if err == nil {
			return out, nil
		}
		last = err
		if !retry || r.ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

func (r *fetcher) downloadOnce(what, rel string, query any, name string) (*Fetched, bool, error) {
	tmp, err := os.CreateTemp(r.o.Dir, ".download-*")
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	req, err := r.c.NewRequest(http.MethodGet, rel, query, []gl.RequestOptionFunc{gl.WithContext(r.ctx)})
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	h := sha256.New()
	lw := &limitWriter{w: io.MultiWriter(tmp, h), left: r.max}
	resp, err := r.c.Do(req, lw)
	if lw.over {
		return nil, false, fmt.Errorf("%s: the file is larger than the limit of %d bytes", what, r.max)
	}
	if err != nil {
		var er *gl.ErrorResponse
		if errors.As(err, &er) || resp != nil && resp.Response != nil && resp.StatusCode >= 400 {
			if resp != nil && resp.StatusCode == http.StatusNotFound {
				return nil, false, fmt.Errorf("%s failed: GitLab answered 404 Not Found; the file, the job or project %s is missing, or the token cannot see it", what, r.cfg.Project)
			}
			return nil, false, r.apiError(what, resp, err)
		}
		// The body broke off or the connection failed after the
		// client's own retries: worth another try from the start.
		return nil, true, fmt.Errorf("%s failed: %s", what, redact(err.Error(), r.cfg.Token))
	}
	if err := tmp.Sync(); err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	keep = true
	return &Fetched{Path: tmp.Name(), FileName: name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: r.max - lw.left}, false, nil
}

// extract copies one member of an artifacts archive into the download
// directory, hashing it; a member larger than it claims is cut off.
func (r *fetcher) extract(zf *zip.File) (*Fetched, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(r.o.Dir, ".download-*")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	lw := &limitWriter{w: io.MultiWriter(tmp, h), left: r.max}
	_, err = io.Copy(lw, rc)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		if lw.over {
			return nil, fmt.Errorf("%s is larger than the limit of %d bytes", zf.Name, r.max)
		}
		return nil, fmt.Errorf("extract %s: %w", zf.Name, err)
	}
	return &Fetched{Path: tmp.Name(), FileName: path.Base(zf.Name), SHA256: hex.EncodeToString(h.Sum(nil)), Size: r.max - lw.left}, nil
}

// check reads the downloaded .deb back: it must be the configured package
// at the tag's version, then it gets its final name.
func (r *fetcher) check(out *Fetched) (*Fetched, error) {
	id, err := debfile.OpenDeb(out.Path)
	if err != nil {
		os.Remove(out.Path)
		return nil, fmt.Errorf("%s from %s: %s is not a readable .deb: %w", out.FileName, out.Source, out.Path, err)
	}
	d := &localDeb{Identity: id, path: out.Path, name: out.FileName}
	if d.Package != r.o.Package {
		os.Remove(out.Path)
		return nil, fmt.Errorf("%s from %s is package %s, not %s; refusing to deploy it", out.FileName, out.Source, d.Package, r.o.Package)
	}
	if err := checkTag(r.cfg.Tag, d); err != nil {
		os.Remove(out.Path)
		return nil, err
	}
	out.PackageName, out.Version = d.Package, d.Version
	// The local name is the Debian one, whatever the registry made of it.
	final := filepath.Join(r.o.Dir, d.FileName())
	if err := os.Rename(out.Path, final); err != nil {
		os.Remove(out.Path)
		return nil, fmt.Errorf("keep %s: %w", out.FileName, err)
	}
	out.Path = final
	r.logf("%s: downloaded from the %s, SHA-256 %s", out.FileName, out.Source, out.SHA256)
	return out, nil
}

// limitWriter fails once more than left bytes were written, so a server
// cannot fill the disk.
type limitWriter struct {
	w    io.Writer
	left int64
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.over = true
		return 0, errors.New("download larger than the limit")
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}
