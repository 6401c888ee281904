package venv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// sandbox runs the build's tools either on the host or chrooted into
// another Debian release's root, so that one code path builds for both:
// in a root, python3, pip, ldconfig, dpkg-query and dpkg-shlibdeps are that
// release's, and the venv, its Depends and its library packages are too.
// Files are read and written from the host (relocation, the ELF scan);
// only the paths handed to the tools are translated.
type sandbox struct{ root string } // "" runs on the host

// command is name with args, run in the root when there is one. A bare
// name is looked up in the root's standard directories, not on the
// host's PATH.
func (s sandbox) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if s.root != "" && !strings.Contains(name, "/") {
		for _, d := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin"} {
			if st, err := os.Stat(filepath.Join(s.root, d, name)); err == nil && !st.IsDir() {
				name = filepath.Join(d, name)
				break
			}
		}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	if s.root != "" {
		// The child chroots before it changes to cmd.Dir, so Dir is a
		// path inside the root too.
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: s.root}
	}
	return cmd
}

// lookPath finds a tool where command would run it.
func (s sandbox) lookPath(name string) (string, error) {
	if s.root == "" {
		return exec.LookPath(name)
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin"} {
		if st, err := os.Stat(filepath.Join(s.root, d, name)); err == nil && !st.IsDir() {
			return filepath.Join(d, name), nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// in is the path the tools see for the host path p (below the root).
func (s sandbox) in(p string) string {
	if s.root == "" {
		return p
	}
	rel, err := filepath.Rel(s.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return filepath.Join("/", rel)
}

// host is the host path of the path p the tools see.
func (s sandbox) host(p string) string {
	if s.root == "" {
		return p
	}
	return filepath.Join(s.root, p)
}

// inside reports whether host path p is below the root (always true
// without one).
func (s sandbox) inside(p string) bool {
	if s.root == "" {
		return true
	}
	rel, err := filepath.Rel(s.root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// tempDir makes a temporary directory the tools can reach.
func (s sandbox) tempDir(pattern string) (string, error) {
	if s.root == "" {
		return os.MkdirTemp("", pattern)
	}
	return os.MkdirTemp(filepath.Join(s.root, "tmp"), pattern)
}
