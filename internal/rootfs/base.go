package rootfs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Base is a Debian root built once with debootstrap and cached read-only;
// its users overlay it (Layer) instead of building their own.
type Base struct {
	// Dir is the finished root. It appears, by a rename, only when the
	// build completed, so a killed build never leaves a half root that
	// looks finished.
	Dir     string
	Suite   string   // the Debian release, e.g. DefaultSuite
	Include []string // packages debootstrap installs besides minbase
	// Debs keeps downloaded .debs between builds (debootstrap's
	// --cache-dir); empty keeps none.
	Debs string
}

// Finish completes a root that debootstrap made (a second stage of
// packages, configuration) before it is cached.
type Finish func(ctx context.Context, root string, m Mirrors) error

// hostRoot is where HostMirrors looks for the host's apt sources (tests
// point it at a fake /etc/apt).
var hostRoot = "/"

// Ready reports whether the finished root is there.
func (b Base) Ready() bool {
	_, err := os.Stat(filepath.Join(b.Dir, "etc/os-release"))
	return err == nil
}

// BuildDir is where the root is built before the rename to Dir.
func (b Base) BuildDir() string { return b.Dir + ".building" }

// lockPath is one lock per cache directory, so that two processes (two
// test binaries, two lab commands) never build into the same directory:
// the second waits and finds the root ready.
func (b Base) lockPath() string { return filepath.Join(filepath.Dir(b.Dir), "build.lock") }

// Ensure builds the root unless it is ready: debootstrap --variant=minbase
// from the host's mirrors into BuildDir, then finish (nil: nothing more),
// then the rename to Dir. r runs debootstrap; progress (nil: discard) hears
// of the wait for the lock and of the debootstrap stage. Errors of finish
// are returned as they are.
func (b Base) Ensure(ctx context.Context, r Runner, progress io.Writer, finish Finish) error {
	if b.Ready() {
		return nil
	}
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(filepath.Dir(b.Dir), 0o755); err != nil {
		return fmt.Errorf("base root cache: %w", err)
	}
	unlock, err := Flock(ctx, b.lockPath(), progress)
	if err != nil {
		return fmt.Errorf("base root cache: %w", err)
	}
	defer unlock()
	if b.Ready() {
		return nil
	}
	m, err := HostMirrors(hostRoot, b.Suite)
	if err != nil {
		return err
	}
	// A killed build leaves its directory, possibly with /proc still
	// mounted in it; nothing of it is reused.
	root := b.BuildDir()
	if err := UnmountBelow(root); err != nil {
		return fmt.Errorf("remove the half-built root: %w", err)
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("remove the half-built root: %w", err)
	}
	for _, d := range []string{root, b.Debs} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("base root cache: %w", err)
		}
	}
	fmt.Fprintf(progress, "  stage 1: debootstrap --variant=minbase from %s\n", m.Main)
	if err := r.Run(ctx, nil, b.debootstrapArgs(m.Main)...); err != nil {
		return fmt.Errorf("stage 1: %w", err)
	}
	if finish != nil {
		if err := finish(ctx, root, m); err != nil {
			return err
		}
	}
	if err := os.Rename(root, b.Dir); err != nil {
		return fmt.Errorf("base root cache: %w", err)
	}
	return nil
}

func (b Base) debootstrapArgs(mirror string) []string {
	args := []string{"debootstrap", "--variant=minbase"}
	if len(b.Include) > 0 {
		args = append(args, "--include="+strings.Join(b.Include, ","))
	}
	if b.Debs != "" {
		args = append(args, "--cache-dir="+b.Debs)
	}
	return append(args, b.Suite, b.BuildDir(), mirror)
}
