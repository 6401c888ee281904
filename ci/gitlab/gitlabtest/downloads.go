package gitlabtest

import (
	"archive/zip"
	"bytes"
	"net/http"
	"sort"
	"strconv"
)

// AddPackageFile stores a file in a generic package directly, as a
// `debship release` run would have (without an HTTP request).
func (s *Server) AddPackageFile(projectID int64, name, version, file string, data []byte) PackageFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.storeFile(s.projects[strconv.FormatInt(projectID, 10)], name, version, file, data)
}

// TamperPackageFile replaces the bytes of the newest file of that name
// without updating the checksums GitLab lists for it: a corrupted or
// tampered download, which a client checking the SHA-256 must refuse.
func (s *Server) TamperPackageFile(projectID int64, name, version, file string, data []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pkg := range s.projects[strconv.FormatInt(projectID, 10)].Packages {
		if pkg.Name != name || pkg.Version != version {
			continue
		}
		for i := len(pkg.Files) - 1; i >= 0; i-- {
			if pkg.Files[i].FileName == file {
				pkg.Files[i].data = data
				return true
			}
		}
	}
	return false
}

// AddJobArtifacts records a successful job named job in a pipeline for ref
// whose artifacts are files (path in the archive → content). A later call
// for the same ref and job is a newer job and wins, as in GitLab.
func (s *Server) AddJobArtifacts(projectID int64, ref, job string, files map[string][]byte) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			panic(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projects[strconv.FormatInt(projectID, 10)].Artifacts[artifactKey{ref, job}] = buf.Bytes()
}

// artifacts answers GET /projects/:id/jobs/artifacts/:ref_name/download?job=name
// with the zip archive, or 404 when no successful job of that name ran for
// the ref.
func (s *Server) artifacts(c *reqCtx, ref string) {
	job := c.r.URL.Query().Get("job")
	if job == "" {
		c.json(http.StatusBadRequest, map[string]string{"error": "job is missing"})
		return
	}
	data, ok := c.project.Artifacts[artifactKey{ref, job}]
	if !ok {
		c.message(http.StatusNotFound, "404 Not found")
		return
	}
	c.status = http.StatusOK
	c.w.Header().Set("Content-Type", "application/zip")
	c.w.Header().Set("Content-Disposition", `attachment; filename="artifacts.zip"`)
	c.w.Write(data)
}
