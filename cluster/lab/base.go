package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/rootfs"
	"gitlab.com/debship/debship/templates"
)

// base is the cached, read-only Debian root every node overlays: the
// minbase of rootfs.Base, then the lab's packages and configuration.
type base struct {
	rootfs.Base
	release  debian.Release
	cacheDir string // the release's: <cache>/<suite>
	// keepStale leaves roots of other keys alone: a lab that is up may
	// still boot from one (Prepare runs beside a lab; Up cleans up first).
	keepStale bool
}

// newBase is the base root of a release, in a directory of the release's
// own: bases of other releases stay cached, so that switching the lab
// between releases boots in seconds after the first build of each.
func newBase(cacheDir, suite string) (base, error) {
	r, ok := debian.BySuite(suite)
	if !ok {
		return base{}, fmt.Errorf("no Debian release %q (releases: %s)", suite, strings.Join(Releases(), ", "))
	}
	k, err := baseKey(r)
	if err != nil {
		return base{}, err
	}
	cacheDir = filepath.Join(cacheDir, r.Suite)
	return base{
		release: r,
		Base: rootfs.Base{
			Dir:   filepath.Join(cacheDir, "base-"+k),
			Suite: r.Suite,
			// Packages lists would fail here: debootstrap's resolver does
			// not handle virtual packages (python3-cryptography needs
			// python3-cffi-backend-api-min), so they come from apt in
			// stage two.
			Include: []string{"ca-certificates"},
			Debs:    filepath.Join(cacheDir, "debs"),
		},
		cacheDir: cacheDir,
	}, nil
}

func (b base) logPath() string { return filepath.Join(b.cacheDir, "build.log") }

// ensure builds the base root unless a finished one with the same key
// exists. Bases of other keys (an older package list) are deleted.
func (b base) ensure(ctx context.Context, progress io.Writer) error {
	if b.Ready() {
		return nil
	}
	if err := os.MkdirAll(b.cacheDir, 0o755); err != nil {
		return fmt.Errorf("build base: %w", err)
	}
	// With keepStale they go with the next lab up, once nothing is
	// mounted over them.
	if !b.keepStale {
		if err := b.removeStale(); err != nil {
			return fmt.Errorf("build base: %w", err)
		}
	}
	log, err := os.Create(b.logPath())
	if err != nil {
		return fmt.Errorf("build base: %w", err)
	}
	defer log.Close()
	// Whatever the build leaves running (an interrupted dpkg) dies with it.
	defer func() { _ = stopGroup(buildGroup(b.Suite)) }()
	start := time.Now()
	fmt.Fprintf(progress, "building the Debian %s base root in %s (first run or changed package list: 1-4 min; log: %s)\n",
		b.Suite, b.Dir, b.logPath())
	run := buildRunner(b.Suite, log)
	err = b.Ensure(ctx, run, progress, func(ctx context.Context, root string, m rootfs.Mirrors) error {
		fmt.Fprintf(progress, "  stage 2: apt-get install %d packages\n", len(packages(b.release)))
		if err := b.installPackages(ctx, run, root, m); err != nil {
			return fmt.Errorf("stage 2: %w", err)
		}
		fmt.Fprintf(progress, "  configuring the image\n")
		if err := customize(ctx, run, root); err != nil {
			return fmt.Errorf("configure image: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("build base (log: %s): %w", b.logPath(), err)
	}
	fmt.Fprintf(progress, "base root ready after %s\n", time.Since(start).Round(time.Second))
	return nil
}

// removeStale deletes roots of other keys of this release, half-built ones
// included, and those of the layout before releases (<cache>/base-*).
// Callers hold the lab lock and have cleaned up, so no overlay uses them.
func (b base) removeStale() error {
	old, _ := filepath.Glob(filepath.Join(b.cacheDir, "base-*"))
	unversioned, _ := filepath.Glob(filepath.Join(filepath.Dir(b.cacheDir), "base-*"))
	old = append(old, unversioned...)
	for _, d := range old {
		if d == b.Dir {
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

func (b base) installPackages(ctx context.Context, run rootfs.Runner, root string, m rootfs.Mirrors) (err error) {
	if err := renderTo(filepath.Join(root, "etc/apt/sources.list"), 0o644, "lab/sources.list",
		struct{ Main, Security, Suite string }{m.Main, m.Security, b.Suite}); err != nil {
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
	if err := moveDebs(b.Debs, archives); err != nil {
		return err
	}
	defer func() {
		if mErr := moveDebs(archives, b.Debs); mErr != nil && err == nil {
			err = mErr
		}
	}()
	env := []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8"}
	if err := run.Run(ctx, env, "chroot", root, "apt-get", "update", "-q"); err != nil {
		return err
	}
	args := append([]string{"chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends"}, packages(b.release)...)
	return run.Run(ctx, env, args...)
}

func customize(ctx context.Context, run rootfs.Runner, root string) error {
	script := filepath.Join(root, "tmp/debship-customize.sh")
	data := struct {
		Disabled, Masked []string
		Admin            string
	}{DisabledUnits, MaskedUnits, AdminUser}
	if err := renderTo(script, 0o755, customizeTemplate, data); err != nil {
		return err
	}
	defer os.Remove(script)
	return run.Run(ctx, nil, "chroot", root, "/bin/sh", "/tmp/debship-customize.sh")
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

// buildGroupPrefix names the cgroup a release's base build runs in
// (debship-lab-build-<suite>), one per release so that the builds of two
// releases run side by side (lab prepare). An interrupted build is killed
// completely, grandchildren included, when it ends, or by the next build of
// that release if this process was killed; a lab's cleanup leaves builds
// alone.
const buildGroupPrefix = "build"

func buildGroup(suite string) string { return buildGroupPrefix + "-" + suite }

// buildRunner runs build steps in the release's build cgroup with their
// output appended to log. Its first command kills what a killed earlier
// build of the release left running: Ensure runs it holding the release's
// build lock, so no other build of it is running.
func buildRunner(suite string, log io.Writer) rootfs.Runner {
	group := buildGroup(suite)
	var once sync.Once
	return rootfs.Runner{
		Log: log,
		Command: func(argv []string) (*exec.Cmd, error) {
			once.Do(func() { _ = stopGroup(group) })
			return cgroupCommand(group, argv)
		},
		Stop: func() error { return stopGroup(group) },
	}
}

// Prepare builds the base root of opts.Release now unless it is cached, so
// that a later `lab up` boots in seconds: for a CI image, or a test run
// that builds its roots while the machine has nothing timing-sensitive to
// do. It needs no lab and changes none.
func Prepare(ctx context.Context, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return fmt.Errorf("lab prepare: %w", err)
	}
	if err := CheckHost(); err != nil {
		return fmt.Errorf("lab prepare: %w", err)
	}
	b, err := newBase(o.CacheDir, o.Release)
	if err != nil {
		return fmt.Errorf("lab prepare: %w", err)
	}
	if b.Ready() {
		fmt.Fprintf(o.Progress, "the Debian %s base root is ready in %s\n", b.Suite, b.Dir)
		return nil
	}
	b.keepStale = true
	if err := b.ensure(ctx, o.Progress); err != nil {
		return fmt.Errorf("lab prepare: %w", err)
	}
	return nil
}
