package rootfs

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFlockWaitsForHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := Flock(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder (its own open file, as in another process) waits,
	// says so once, and gives up with the context.
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := Flock(ctx, path, &progress); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while held: %v", err)
	}
	if strings.Count(progress.String(), "waiting") != 1 {
		t.Errorf("progress: %q", progress.String())
	}
	unlock()
	unlock2, err := Flock(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}

// Users of a root hold it shared; a refresh deletes a replaced root only
// when it gets the lock exclusively.
func TestSharedLockKeepsTryFlockOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "use.lock")
	release1, err := FlockShared(path)
	if err != nil {
		t.Fatal(err)
	}
	release2, err := FlockShared(path) // many users at once
	if err != nil {
		t.Fatal(err)
	}
	for i, release := range []func(){release1, release2} {
		if _, ok, err := TryFlock(path); ok || err != nil {
			t.Fatalf("TryFlock with %d users: ok=%v err=%v", 2-i, ok, err)
		}
		release()
	}
	unlock, ok, err := TryFlock(path)
	if !ok || err != nil {
		t.Fatalf("TryFlock without users: ok=%v err=%v", ok, err)
	}
	unlock()
}
