// Package testenv decides what a test does when a prerequisite is missing:
// skip on a developer's machine, fail in CI (CI=true), so that a green CI run
// never hides a test that did not run.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (GitLab and .ci/run set CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test outside CI and fails it in CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and a prerequisite is missing: "+format, args...)
	}
	t.Skipf("prerequisite missing (outside CI): "+format, args...)
}

// NeedCommand ensures an executable is on PATH.
func NeedCommand(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Missing(t, "command %q not found (install it: see .ci/run)", n)
		}
	}
}

// NeedRoot ensures the test runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "this test needs root")
	}
}

// NeedFile ensures a file exists.
func NeedFile(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			Missing(t, "%s not found (install the Debian package that ships it: see .ci/run)", p)
		}
	}
}

// NeedLong skips a test that boots the lab or a Debian root when the run
// asked for quick tests only (go test -short, a developer's inner loop).
// CI never passes -short, so there every such test runs.
func NeedLong(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		if InCI() {
			t.Fatalf("CI=true and -short: this test %s and must run in CI", what)
		}
		t.Skipf("-short: this test %s", what)
	}
}
