package venv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// versionedShlibDepends asks dpkg-shlibdeps (dpkg-dev) for the dependencies
// of the venv's ELF files: like dh_shlibdeps it reads the symbols files of
// the libraries, so the relations carry the minimum versions the objects
// need ("libc6 (>= 2.14)"), not just package names. Libraries bundled in
// the venv (manylinux *.libs) are found through -l and belong to no
// package, which --ignore-missing-info accepts. ok is false when
// dpkg-shlibdeps is not installed or fails; the caller then keeps the
// unversioned mapping.
func versionedShlibDepends(ctx context.Context, sb sandbox, root string, objs []elfObject) (deps []string, ok bool, warning string) {
	tool, err := sb.lookPath("dpkg-shlibdeps")
	if err != nil || len(objs) == 0 {
		return nil, false, ""
	}
	// dpkg-shlibdeps insists on reading debian/control in its working
	// directory, though it needs nothing from it here.
	work, err := sb.tempDir("debship-shlibdeps-")
	if err != nil {
		return nil, false, ""
	}
	defer os.RemoveAll(work)
	if err := os.MkdirAll(filepath.Join(work, "debian"), 0o755); err != nil {
		return nil, false, ""
	}
	if err := os.WriteFile(filepath.Join(work, "debian", "control"), nil, 0o644); err != nil {
		return nil, false, ""
	}
	args := []string{"-O", "--ignore-missing-info"}
	var dirs []string
	for _, o := range objs {
		dirs = append(dirs, sb.in(filepath.Dir(filepath.Join(root, o.Rel))))
	}
	slices.Sort(dirs)
	for _, d := range slices.Compact(dirs) {
		args = append(args, "-l"+d)
	}
	for _, o := range objs {
		args = append(args, sb.in(filepath.Join(root, o.Rel)))
	}
	cmd := sb.command(ctx, tool, args...)
	cmd.Dir = sb.in(work)
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = lastLines(string(ee.Stderr), 3)
		}
		return nil, false, fmt.Sprintf("dpkg-shlibdeps failed (%s); Depends lists the libraries' packages without minimum versions", msg)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, found := strings.CutPrefix(line, "shlibs:Depends="); found {
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, d)
				}
			}
		}
	}
	return deps, true, ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
