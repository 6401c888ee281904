package rootfs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Base is a Debian root built once with debootstrap and cached read-only;
// its users overlay it (Layer) instead of building their own.
type Base struct {
	// Dir is the finished root. It appears, by a rename, only when the
	// build completed, so a killed build never leaves a half root that
	// looks finished.
	Dir     string
	Suite   string   // the Debian release's codename ("trixie"); internal/debian lists them
	Include []string // packages debootstrap installs besides minbase
	// Debs keeps downloaded .debs between builds (debootstrap's
	// --cache-dir); empty keeps none.
	Debs string
	// MaxAge > 0 rebuilds a root older than that, so that a cached build
	// root follows the release's point updates; 0 keeps it for ever (the
	// lab and the test roots are replaced by hand).
	MaxAge time.Duration
	// Refresh rebuilds the root even when it is fresh.
	Refresh bool
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

// Age is how long ago the root was finished.
func (b Base) Age() time.Duration {
	st, err := os.Stat(b.Dir)
	if err != nil {
		return 0
	}
	return time.Since(st.ModTime())
}

// fresh reports whether Ensure may use the root as it is.
func (b Base) fresh() bool {
	return b.Ready() && !b.Refresh && (b.MaxAge <= 0 || b.Age() < b.MaxAge)
}

// useLock is held shared by every user of a root that may be replaced
// (Use), and exclusively by Ensure to delete a replaced one: an overlay's
// lower directory must not change under a mounted overlay.
func (b Base) useLock() string { return b.Dir + ".use.lock" }

// Use marks the root as in use until release is called (or the process
// dies), so that a refresh by another process leaves it in place.
func (b Base) Use() (release func(), err error) {
	return FlockShared(b.useLock())
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
	if b.fresh() {
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
	b.removeReplaced()
	if b.fresh() {
		return nil
	}
	// Refresh once: a second process that waited for this lock finds the
	// new root fresh, not still asked to refresh.
	b.Refresh = false
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
	// The root's age is counted from here (nothing writes to the top of
	// a finished root: its users write to overlays).
	now := time.Now()
	if err := os.Chtimes(root, now, now); err != nil {
		return fmt.Errorf("base root cache: %w", err)
	}
	if b.Ready() {
		// Replaced, not removed: a build may still have it mounted.
		if err := os.Rename(b.Dir, fmt.Sprintf("%s.old-%d", b.Dir, now.UnixNano())); err != nil {
			return fmt.Errorf("base root cache: %w", err)
		}
	}
	if err := os.Rename(root, b.Dir); err != nil {
		return fmt.Errorf("base root cache: %w", err)
	}
	b.removeReplaced()
	return nil
}

// removeReplaced deletes roots replaced by a refresh once nobody uses
// them (a user holds the use lock of the root it mounted); otherwise a
// later Ensure does.
func (b Base) removeReplaced() {
	old, _ := filepath.Glob(b.Dir + ".old-*")
	if len(old) == 0 {
		return
	}
	unlock, ok, err := TryFlock(b.useLock())
	if err != nil || !ok {
		return
	}
	defer unlock()
	for _, d := range old {
		if UnmountBelow(d) == nil {
			os.RemoveAll(d)
		}
	}
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
