package labtest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gitlab.com/debship/debship/cluster/lab"
	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testenv"
)

// ReleaseEnv names the environment variable that picks the release of the
// tests' lab ("bookworm"); the default is the lab's, lab.DefaultRelease.
const ReleaseEnv = "DEBSHIP_LAB_RELEASE"

// Release is the Debian release the tests' lab runs unless a test asks for
// another (GetRelease, FreshRelease).
func Release(t testing.TB) debian.Release {
	t.Helper()
	suite := os.Getenv(ReleaseEnv)
	if suite == "" {
		suite = lab.DefaultRelease
	}
	r, ok := debian.BySuite(suite)
	if !ok {
		t.Fatalf("%s=%s: the lab runs %s", ReleaseEnv, suite, strings.Join(lab.Releases(), " or "))
	}
	return r
}

// ExampleDir is examples/hello-web of this repository.
func ExampleDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(moduleRoot(), "examples", "hello-web")
}

// moduleRoot is this repository's top directory, found from this file's
// path (the tests run in their package's directory).
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// BuildExample builds a copy of examples/hello-web for release r in mode
// "cluster" (pacemaker runs its unit), offline, at the given version;
// edit may change the copied source first (a broken variant). A build for
// a release other than the host's runs in debbuild's cached root of it.
func BuildExample(t testing.TB, r debian.Release, version string, edit func(dir string)) string {
	t.Helper()
	testenv.NeedLong(t, "builds a .deb for the lab")
	testenv.NeedFile(t, "/usr/bin/python3")
	dir := filepath.Join(t.TempDir(), "hello-web")
	if err := os.CopyFS(dir, os.DirFS(ExampleDir(t))); err != nil {
		t.Fatal(err)
	}
	py := filepath.Join(dir, "pyproject.toml")
	ReplaceIn(t, py, "version = \"1.4.0\"", "version = \""+version+"\"")
	if edit != nil {
		edit(dir)
	}
	// The mode as a flag: whatever a variant's pyproject.toml says, the
	// lab runs a package pacemaker starts.
	spec, err := debbuild.LoadSpec(dir, debbuild.Overrides{Mode: debfile.ModeCluster})
	if err != nil {
		t.Fatal(err)
	}
	res, err := debbuild.Build(context.Background(), spec, debbuild.BuildOptions{
		Output: t.TempDir(), NoIndex: true, SourceDateEpoch: 1767225600, Target: r.Target,
	})
	if err != nil {
		t.Fatalf("build hello-web %s for %s: %v", version, r.Target, err)
	}
	return res.Path
}

// ReplaceIn replaces the first old in the file with new; the file must
// have it.
func ReplaceIn(t testing.TB, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}
