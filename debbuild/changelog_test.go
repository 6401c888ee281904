package debbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/debship/debship/internal/testenv"
)

// In a monorepo only the tags of this project's releases become changelog
// entries: a tag whose pyproject.toml names another project, or another
// version, does not.
func TestChangelogFromTags(t *testing.T) {
	testenv.NeedCommand(t, "git")
	repo := t.TempDir()
	app := filepath.Join(repo, "app")
	os.MkdirAll(app, 0o755)
	write := func(version string) {
		os.WriteFile(filepath.Join(app, "pyproject.toml"), []byte(strings.Replace(baseProject, "1.4.0rc1", version, 1)), 0o644)
	}
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=T", "-c", "user.email=t@example.org"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	write("1.0.0")
	git("add", ".")
	git("commit", "-q", "-m", "1.0.0")
	git("tag", "v1.0.0") // a release of the app
	git("tag", "v0.5.0") // the repository's other project: pyproject says 1.0.0
	git("tag", "not-a-version")
	write("1.2.0rc1")
	git("commit", "-q", "-a", "-m", "1.2.0rc1")
	git("tag", "My_Web.App-1.2.0rc1")
	write("1.3.0")
	git("commit", "-q", "-a", "-m", "1.3.0")
	git("tag", "1.3.0") // the version being built: not history
	s, err := LoadSpec(app, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range changelogEntries(s, "1.3-1", 1770000000) {
		got = append(got, e.Version)
	}
	if want := "1.3-1 1.2~rc1-1 1.0-1"; strings.Join(got, " ") != want {
		t.Errorf("changelog versions = %q, want %q", strings.Join(got, " "), want)
	}
}
