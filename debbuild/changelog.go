package debbuild

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"gitlab.com/debship/debship/debbuild/debversion"
)

// changelogEntry is one stanza of changelog.Debian.
type changelogEntry struct {
	Version string // Debian version
	Text    string
	Date    string // RFC 1123Z
}

// maxHistory bounds how many earlier releases the changelog lists.
const maxHistory = 20

// changelogEntries is the package's history: this build first, then the
// project's earlier releases found as git tags (v1.2.0, 1.2.0, name-1.2.0)
// whose pyproject.toml names the same project, newest first. A project
// without tags gets one entry.
func changelogEntries(s *Spec, debVersion string, sde int64) []changelogEntry {
	cur := changelogEntry{
		Version: debVersion,
		Text:    fmt.Sprintf("Package of %s %s, built by debship.", s.ProjectName, s.Version),
		Date:    time.Unix(sde, 0).UTC().Format(time.RFC1123Z),
	}
	return append([]changelogEntry{cur}, gitReleases(s, debVersion)...)
}

func gitReleases(s *Spec, current string) []changelogEntry {
	top, err := exec.Command("git", "-C", s.Dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return nil
	}
	rel, err := filepath.Rel(strings.TrimSpace(string(top)), s.PyProject)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil
	}
	out, err := exec.Command("git", "-C", s.Dir, "for-each-ref", "refs/tags",
		"--format=%(refname:short)%09%(*committerdate:unix)%09%(committerdate:unix)").Output()
	if err != nil {
		return nil
	}
	var entries []changelogEntry
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		tag := f[0]
		name := strings.TrimPrefix(strings.TrimPrefix(tag, s.ProjectName+"-"), s.Package+"-")
		name = strings.TrimPrefix(strings.TrimPrefix(name, s.ProjectName+"/"), "v")
		up, err := debversion.DebianVersion(name)
		if err != nil {
			continue
		}
		dv := up + "-1"
		if debversion.CompareDebianVersions(dv, current) >= 0 {
			continue
		}
		if !sameProject(s, tag, rel, up) {
			continue
		}
		ts := f[1]
		if ts == "" {
			ts = f[2]
		}
		sec, _ := strconv.ParseInt(ts, 10, 64)
		entries = append(entries, changelogEntry{
			Version: dv,
			Text:    fmt.Sprintf("Release %s of %s (git tag %s).", name, s.ProjectName, tag),
			Date:    time.Unix(sec, 0).UTC().Format(time.RFC1123Z),
		})
	}
	sort.Slice(entries, func(i, j int) bool {
		return debversion.CompareDebianVersions(entries[i].Version, entries[j].Version) > 0
	})
	if len(entries) > maxHistory {
		entries = entries[:maxHistory]
	}
	// Two tags of one version (v1.0 and 1.0): keep one.
	var out2 []changelogEntry
	for _, e := range entries {
		if len(out2) == 0 || out2[len(out2)-1].Version != e.Version {
			out2 = append(out2, e)
		}
	}
	return out2
}

// sameProject guards monorepos: a tag counts only if the pyproject.toml at
// that tag names the same project and, unless the version is dynamic (then
// the tag is where it comes from), that version.
func sameProject(s *Spec, tag, rel, upstream string) bool {
	b, err := exec.Command("git", "-C", s.Dir, "show", tag+":"+filepath.ToSlash(rel)).Output()
	if err != nil {
		return false
	}
	var py pyproject
	if toml.Unmarshal(b, &py) != nil {
		return false
	}
	if py.Project.Name != s.ProjectName {
		return false
	}
	for _, d := range py.Project.Dynamic {
		if d == "version" {
			return true
		}
	}
	v, err := debversion.DebianVersion(py.Project.Version)
	return err == nil && v == upstream
}
