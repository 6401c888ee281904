// Package buildroot is the clean root a build for another Debian release
// runs in: a cached debootstrap root of that release with what a build
// needs (its python3, pip, dpkg-dev, lintian), refreshed daily, and one
// writable overlay of it per build that the build's inputs are exposed in.
package buildroot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/rootfs"
)

// Cache holds the cached roots of the releases a build can target
// besides the host's own, one per release.
var Cache = "/var/cache/debship/build"

// runDir holds the overlays of running builds; a build killed midway
// leaves its directory, which the next build removes.
var runDir = "/var/tmp/debship-build"

// maxAge makes a build root follow its release's point updates.
const maxAge = 24 * time.Hour

// packages are what a build needs besides minbase: the release's
// interpreter with venv and pip, setuptools (the usual build backend, so
// that most projects need no isolated build env) and the wheels an offline
// isolated build uses, dpkg-shlibdeps (dpkg-dev) for the library Depends,
// and that release's lintian for inspect --check.
var packages = []string{"python3", "python3-venv", "python3-pip", "python3-setuptools", "python3-wheel-whl", "dpkg-dev", "ca-certificates", "lintian"}

// mountTag names the build roots' mounts, apart from the lab's and the
// test roots'.
const mountTag = "debship-build"

// Base is the cached root of release r that builds for r run in.
// Its name carries a digest of the package list, so that a debship that
// needs other packages builds a new root instead of using a lacking one.
func Base(r debian.Release) rootfs.Base {
	sum := sha256.Sum256([]byte(strings.Join(packages, ",")))
	return rootfs.Base{
		Dir:   filepath.Join(Cache, r.Suite+"-"+hex.EncodeToString(sum[:4])),
		Suite: r.Suite,
		// The packages come from apt in a second stage: debootstrap's
		// resolver leaves a virtual dependency unmet (lintian's
		// libnet-ssleay-perl needs perl-openssl-abi-3).
		Include: []string{"ca-certificates"},
		Debs:    filepath.Join(Cache, "debs"),
		MaxAge:  maxAge,
	}
}

// installPackages is the second stage of a build root: apt installs
// packages, then drops its downloads.
func installPackages(log io.Writer) rootfs.Finish {
	return func(ctx context.Context, root string, _ rootfs.Mirrors) (err error) {
		if err := rootfs.MountProc(mountTag, filepath.Join(root, "proc")); err != nil {
			return err
		}
		defer func() {
			if uerr := rootfs.Unmount(filepath.Join(root, "proc")); err == nil {
				err = uerr
			}
		}()
		run := rootfs.Runner{Log: log}
		env := []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8"}
		steps := [][]string{
			{"chroot", root, "apt-get", "update", "-q"},
			append([]string{"chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends"}, packages...),
			{"chroot", root, "apt-get", "clean"},
		}
		for _, argv := range steps {
			if err := run.Run(ctx, env, argv...); err != nil {
				return fmt.Errorf("stage 2: %w", err)
			}
		}
		return nil
	}
}

// Needed reports whether a build for r runs in r's root: when the
// host is another release or not a Debian release debship knows.
func Needed(r debian.Release) bool {
	h, ok := debian.Host()
	return !ok || h.Suite != r.Suite
}

// Root is one build's writable overlay on the cached root of its
// release, with the project (and local find-links) bind-mounted into it.
type Root struct {
	release debian.Release
	base    rootfs.Base
	layer   rootfs.Layer
	unuse   func()
	unlock  func()
	binds   int
}

// Dir is the merged root (a host path).
func (b *Root) Dir() string { return b.layer.Root() }

// Open ensures the cached root of r (debootstrap on first use,
// when older than a day, or with refresh) and mounts a fresh overlay of
// it. It needs root: chroot, mounts and debootstrap do.
func Open(ctx context.Context, r debian.Release, refresh bool, log io.Writer) (_ *Root, err error) {
	if os.Geteuid() != 0 {
		host := "this host"
		if h, ok := debian.Host(); ok {
			host = "this " + h.Target + " host"
		}
		return nil, fmt.Errorf("building for %s on %s needs root (the build runs in a cached %s root with chroot): run debship as root, or build on a %s host or in the %s image", r.Target, host, r.Suite, r.Target, r.Image())
	}
	base := Base(r)
	base.Refresh = refresh
	if !base.Ready() || refresh || base.Age() >= base.MaxAge {
		fmt.Fprintf(log, "building the %s build root in %s (debootstrap: a few minutes)\n", r.Suite, base.Dir)
	}
	if err := base.Ensure(ctx, rootfs.Runner{}, log, installPackages(io.Discard)); err != nil {
		return nil, fmt.Errorf("%s build root: %w", r.Suite, err)
	}
	return Mount(r, base)
}

// Mount mounts a fresh overlay of the finished root base.
func Mount(r debian.Release, base rootfs.Base) (_ *Root, err error) {
	b := &Root{release: r, base: base}
	defer func() {
		if err != nil {
			b.Close(false)
		}
	}()
	if b.unuse, err = base.Use(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("build root: %w", err)
	}
	removeDeadRuns()
	dir, err := os.MkdirTemp(runDir, "run-")
	if err != nil {
		return nil, fmt.Errorf("build root: %w", err)
	}
	b.layer = rootfs.Layer{Dir: dir}
	unlock, ok, err := rootfs.TryFlock(filepath.Join(dir, "lock"))
	if err != nil || !ok {
		return nil, fmt.Errorf("build root: lock %s: %v", dir, err)
	}
	b.unlock = unlock
	if err := b.layer.Mount(mountTag, base.Dir); err != nil {
		return nil, err
	}
	root := b.Dir()
	if err := rootfs.MountProc(mountTag, filepath.Join(root, "proc")); err != nil {
		return nil, err
	}
	// pip resolves an index's host name inside the root.
	if rc, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		os.Remove(filepath.Join(root, "etc/resolv.conf"))
		if err := os.WriteFile(filepath.Join(root, "etc/resolv.conf"), rc, 0o644); err != nil {
			return nil, fmt.Errorf("build root: %w", err)
		}
	}
	return b, nil
}

// expose makes a host directory visible in the root and returns its host
// path below the root.
func (b *Root) Expose(dir string) (string, error) {
	b.binds++
	target := filepath.Join(b.Dir(), "build", strconv.Itoa(b.binds))
	if err := rootfs.BindMount(dir, target); err != nil {
		return "", err
	}
	return target, nil
}

// exposeFile copies a file into the root (a requirements file outside the
// project) and returns its host path below the root.
func (b *Root) ExposeFile(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	b.binds++
	dst := filepath.Join(b.Dir(), "build", strconv.Itoa(b.binds), filepath.Base(file))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	return dst, os.WriteFile(dst, data, 0o644)
}

// close unmounts the overlay and removes it. keep leaves what the build
// wrote (the overlay's upper directory, which holds the staging directory)
// and returns the host directory that the root's / is then in.
func (b *Root) Close(keep bool) (kept string, err error) {
	var errs []error
	if b.layer.Dir != "" {
		err := b.layer.Unmount()
		errs = append(errs, err)
		switch {
		case err != nil:
		case keep:
			// Out of run-*, which the next build would remove.
			dir := filepath.Join(filepath.Dir(b.layer.Dir), strings.Replace(filepath.Base(b.layer.Dir), "run-", "kept-", 1))
			if err := os.Rename(b.layer.Dir, dir); err != nil {
				errs = append(errs, err)
			} else {
				kept = rootfs.Layer{Dir: dir}.Upper()
			}
		default:
			errs = append(errs, os.RemoveAll(b.layer.Dir))
		}
	}
	if b.unlock != nil {
		b.unlock()
	}
	if b.unuse != nil {
		b.unuse()
	}
	if err := errors.Join(errs...); err != nil {
		return kept, fmt.Errorf("build root: %w", err)
	}
	return kept, nil
}

// removeDeadRuns removes what killed builds left: a run whose lock nobody
// holds is no longer running.
func removeDeadRuns() {
	runs, _ := filepath.Glob(filepath.Join(runDir, "run-*"))
	for _, d := range runs {
		// A run a moment old may not have taken its lock yet.
		if st, err := os.Stat(d); err != nil || time.Since(st.ModTime()) < time.Minute {
			continue
		}
		unlock, ok, err := rootfs.TryFlock(filepath.Join(d, "lock"))
		if err != nil || !ok {
			continue
		}
		if rootfs.UnmountBelow(d) == nil && !strings.Contains(d, "..") {
			os.RemoveAll(d)
		}
		unlock()
	}
}
