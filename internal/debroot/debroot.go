// Package debroot gives tests a clean Debian root of a given release to
// install packages into: built once per release with debootstrap (cached
// outside the repository), then overlaid per test so that every test
// starts from the same clean root.
package debroot

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/debship/debship/internal/rootfs"
	"gitlab.com/debship/debship/internal/testenv"
)

// mountTag names this package's mounts; not the lab's tag, whose cleanup
// would unmount a test's root.
const mountTag = "debship-testroot"

// CacheDir holds the cached roots, one per package list.
var CacheDir = "/var/cache/debship/testroot"

// Packages are in the cached root besides minbase: what a debship package
// needs from a fresh Debian host (python3, adduser) and systemd, which
// every Debian VM has (systemd-analyze verify runs against this root).
var Packages = []string{"python3", "adduser", "ca-certificates", "systemd"}

// Root returns a writable clean root of the Debian release suite
// ("trixie") for this test, removed at the end. It needs root, debootstrap
// and overlayfs.
func Root(t *testing.T, suite string) string {
	t.Helper()
	testenv.NeedLong(t, "installs into a clean Debian root")
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "debootstrap", "chroot", "mount")
	base, err := ensureBase(t.Context(), suite)
	if err != nil {
		t.Fatalf("clean Debian %s root: %v", suite, err)
	}
	layer := rootfs.Layer{Dir: t.TempDir()}
	if err := layer.Mount(mountTag, base); err != nil {
		testenv.Missing(t, "overlayfs: %v", err)
	}
	t.Cleanup(func() {
		if err := layer.Unmount(); err != nil {
			t.Errorf("clean Debian root: %v", err)
		}
	})
	// Maintainer scripts (adduser, systemctl) expect /proc.
	if err := rootfs.MountProc(mountTag, filepath.Join(layer.Root(), "proc")); err != nil {
		t.Fatalf("clean Debian root: %v", err)
	}
	return layer.Root()
}

// ensureBase builds the cached root once (rootfs.Base: debootstrap from the
// host's mirrors, renamed into place when complete, locked against a second
// test binary building the same root).
func ensureBase(ctx context.Context, suite string) (string, error) {
	b := rootfs.Base{
		Dir:     filepath.Join(CacheDir, suite+"-"+strings.Join(Packages, "_")),
		Suite:   suite,
		Include: Packages,
	}
	if err := b.Ensure(ctx, rootfs.Runner{}, nil, nil); err != nil {
		return "", err
	}
	return b.Dir, nil
}
