package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/debship/debship/internal/rootfs"
	"gitlab.com/debship/debship/templates"
)

// base is the cached, read-only Debian root every node overlays.
type base struct {
	cacheDir string
	key      string
}

func newBase(cacheDir string) (base, error) {
	k, err := baseKey()
	if err != nil {
		return base{}, err
	}
	return base{cacheDir: cacheDir, key: k}, nil
}

// Dir is the finished root; it exists only when the build completed.
func (b base) Dir() string      { return filepath.Join(b.cacheDir, "base-"+b.key) }
func (b base) buildDir() string { return b.Dir() + ".building" }
func (b base) debsDir() string  { return filepath.Join(b.cacheDir, "debs") }
func (b base) logPath() string  { return filepath.Join(b.cacheDir, "build.log") }

func (b base) Ready() bool {
	_, err := os.Stat(filepath.Join(b.Dir(), "etc/os-release"))
	return err == nil
}

// ensure builds the base root unless a finished one with the same key
// exists. Bases of other keys (an older package list) are deleted.
func (b base) ensure(ctx context.Context, progress io.Writer) error {
	if b.Ready() {
		return nil
	}
	if err := os.MkdirAll(b.debsDir(), 0o755); err != nil {
		return fmt.Errorf("build base: %w", err)
	}
	if err := b.removeStale(); err != nil {
		return fmt.Errorf("build base: %w", err)
	}
	log, err := os.Create(b.logPath())
	if err != nil {
		return fmt.Errorf("build base: %w", err)
	}
	defer log.Close()
	// Whatever the build leaves running (an interrupted dpkg) dies with it.
	defer func() { _ = stopGroup(buildGroup) }()
	start := time.Now()
	fmt.Fprintf(progress, "building the Debian %s base root in %s (first run or changed package list: 2-4 min; log: %s)\n",
		Suite, b.Dir(), b.logPath())
	if err := b.build(ctx, log, progress); err != nil {
		return fmt.Errorf("build base (log: %s): %w", b.logPath(), err)
	}
	if err := os.Rename(b.buildDir(), b.Dir()); err != nil {
		return fmt.Errorf("build base: %w", err)
	}
	fmt.Fprintf(progress, "base root ready after %s\n", time.Since(start).Round(time.Second))
	return nil
}

// removeStale deletes half-built roots and roots of other keys. Callers hold
// the lab lock and have cleaned up, so no overlay uses them.
func (b base) removeStale() error {
	if err := rootfs.UnmountBelow(b.buildDir()); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(b.cacheDir, "base-*"))
	for _, d := range old {
		if d == b.Dir() {
			continue
		}
		if err := rootfs.UnmountBelow(d); err != nil {
			return err
		}
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

func (b base) build(ctx context.Context, log, progress io.Writer) error {
	mirrors, err := rootfs.HostMirrors("/", Suite)
	if err != nil {
		return err
	}
	root := b.buildDir()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	// Stage one: a minimal system. Everything in --include fails: debootstrap's
	// resolver does not handle virtual packages (python3-cryptography needs
	// python3-cffi-backend-api-min), so the rest comes from apt in stage two.
	fmt.Fprintf(progress, "  stage 1: debootstrap --variant=minbase from %s\n", mirrors.Main)
	if err := runBuild(ctx, log, nil, "debootstrap", "--variant=minbase", "--include=ca-certificates",
		"--cache-dir="+b.debsDir(), Suite, root, mirrors.Main); err != nil {
		return fmt.Errorf("stage 1: %w", err)
	}
	fmt.Fprintf(progress, "  stage 2: apt-get install %d packages\n", len(Packages))
	if err := b.installPackages(ctx, log, root, mirrors); err != nil {
		return fmt.Errorf("stage 2: %w", err)
	}
	fmt.Fprintf(progress, "  configuring the image\n")
	if err := customize(ctx, log, root); err != nil {
		return fmt.Errorf("configure image: %w", err)
	}
	return nil
}

func (b base) installPackages(ctx context.Context, log io.Writer, root string, m rootfs.Mirrors) (err error) {
	if err := renderTo(filepath.Join(root, "etc/apt/sources.list"), 0o644, "lab/sources.list",
		struct{ Main, Security, Suite string }{m.Main, m.Security, Suite}); err != nil {
		return err
	}
	policy := filepath.Join(root, "usr/sbin/policy-rc.d")
	if err := copyTemplate(policy, 0o755, "lab/policy-rc.d"); err != nil {
		return err
	}
	defer func() {
		if rmErr := os.Remove(policy); rmErr != nil && err == nil {
			err = rmErr
		}
	}()
	if err := rootfs.MountProc(mountSource, filepath.Join(root, "proc")); err != nil {
		return err
	}
	defer func() {
		if uErr := rootfs.UnmountBelow(root); uErr != nil && err == nil {
			err = uErr
		}
	}()
	// The .debs of earlier builds are moved in and back out rather than bind
	// mounted: a rename is free on one file system, and a killed build leaves
	// no mount that the next run could not recognise as the lab's.
	archives := filepath.Join(root, "var/cache/apt/archives")
	if err := moveDebs(b.debsDir(), archives); err != nil {
		return err
	}
	defer func() {
		if mErr := moveDebs(archives, b.debsDir()); mErr != nil && err == nil {
			err = mErr
		}
	}()
	env := []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8"}
	if err := runBuild(ctx, log, env, "chroot", root, "apt-get", "update", "-q"); err != nil {
		return err
	}
	args := append([]string{root, "apt-get", "install", "-y", "-q", "--no-install-recommends"}, Packages...)
	return runBuild(ctx, log, env, "chroot", args...)
}

func customize(ctx context.Context, log io.Writer, root string) error {
	script := filepath.Join(root, "tmp/debship-customize.sh")
	data := struct {
		Disabled, Masked []string
		Admin            string
	}{DisabledUnits, MaskedUnits, AdminUser}
	if err := renderTo(script, 0o755, customizeTemplate, data); err != nil {
		return err
	}
	defer os.Remove(script)
	return runBuild(ctx, log, nil, "chroot", root, "/bin/sh", "/tmp/debship-customize.sh")
}

// moveDebs moves the .deb files of one directory into another.
func moveDebs(from, to string) error {
	debs, err := filepath.Glob(filepath.Join(from, "*.deb"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, d := range debs {
		if err := os.Rename(d, filepath.Join(to, filepath.Base(d))); err != nil {
			return fmt.Errorf("keep downloaded packages: %w", err)
		}
	}
	return nil
}

// renderTo writes the rendered template name to path.
func renderTo(path string, mode os.FileMode, name string, data any) error {
	b, err := templates.Render(name, data)
	if err != nil {
		return err
	}
	return writeFile(path, b, mode)
}

func copyTemplate(path string, mode os.FileMode, name string) error {
	b, err := templates.Raw(name)
	if err != nil {
		return err
	}
	return writeFile(path, b, mode)
}

// writeFile replaces path (even a dangling symlink left by a package, which
// os.WriteFile would follow) with the given content.
func writeFile(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode) // umask must not narrow it
}

// buildGroup is the cgroup the base build runs in (debship-lab-build): an
// interrupted build is killed completely, grandchildren included, here or
// by the cleanup of the next `lab up` if this process was killed.
const buildGroup = "build"

// runBuild runs a build step in the build cgroup with its output appended
// to log; on failure the error carries the last lines of it.
func runBuild(ctx context.Context, log io.Writer, env []string, name string, args ...string) error {
	cmd, err := cgroupCommand(buildGroup, append([]string{name}, args...))
	if err != nil {
		return err
	}
	tail := &tailBuffer{max: 4096}
	cmd.Stdout = io.MultiWriter(log, tail)
	cmd.Stderr = cmd.Stdout
	cmd.Env = append(cmd.Env, env...)
	fmt.Fprintf(log, "+ %s %s\n", name, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = stopGroup(buildGroup)
		<-done
		err = ctx.Err()
	}
	if err != nil {
		return cmdError(name, args, err, tail.Bytes())
	}
	return nil
}
