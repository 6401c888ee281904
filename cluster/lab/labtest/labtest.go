// Package labtest gives integration tests a running lab: one per test
// binary, brought up on first use and taken down when the binary's tests are
// done. Test binaries (go test runs packages in parallel) that use the lab
// take turns: the first holds a machine-wide session lock until its tests
// end, the others wait for it.
//
//	func TestMain(m *testing.M) { labtest.Main(m) }
//
//	func TestFailover(t *testing.T) {
//		l := labtest.Get(t, 3)
//		...
//	}
//
// Without root, debootstrap, systemd-nspawn … the test skips with the reason,
// and fails when CI=true (testenv.Missing).
package labtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"gitlab.com/debship/debship/cluster/lab"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testenv"
	"gitlab.com/debship/debship/internal/testlog"
)

// SessionLockPath is held by a test binary from its first Get until its
// tests end, so that packages sharing the lab wait instead of colliding.
const SessionLockPath = "/run/debship-lab-tests.lock"

// Dir keeps the tests' lab files apart from a user's lab (DefaultDir); the
// base root cache is shared. There is still one lab per machine: a test run
// replaces a user's running lab.
const Dir = "/var/lib/debship/lab-test"

var (
	mu      sync.Mutex
	inMain  bool
	used    bool
	release func()
	// reusable is whether the lab that is up is one this binary booted
	// from the pristine base root: only such a lab is handed out again
	// by Get (a lab left by another run, a user or a snapshot is not).
	reusable bool
)

// Main runs the tests, takes the lab down if they used it, releases the
// session lock and exits with the tests' status.
func Main(m *testing.M) {
	inMain = true
	code := m.Run()
	mu.Lock()
	if used {
		if err := lab.Down(context.Background(), lab.Options{Dir: Dir, Progress: os.Stderr}); err != nil {
			fmt.Fprintf(os.Stderr, "labtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	if release != nil {
		release()
	}
	mu.Unlock()
	os.Exit(code)
}

// Get returns a whole lab with the given number of nodes (2, or 3 with the
// tie-breaker): it is brought up on first use, re-shaped when the node count
// differs, and stopped nodes or pulled cables from earlier tests are
// restored. Nodes keep what earlier tests did to them; use Fresh for
// pristine ones.
func Get(t testing.TB, nodes int) *lab.Lab {
	t.Helper()
	return get(t, getOptions{nodes: nodes, release: Release(t)})
}

// Fresh is Get with nodes booted from the pristine base root (a few seconds).
func Fresh(t testing.TB, nodes int) *lab.Lab {
	t.Helper()
	return get(t, getOptions{nodes: nodes, release: Release(t), fresh: true})
}

// FreshRelease is Fresh with nodes of another Debian release. The next Get
// of the default release boots fresh nodes too.
func FreshRelease(t testing.TB, nodes int, r debian.Release) *lab.Lab {
	t.Helper()
	return get(t, getOptions{nodes: nodes, release: r, fresh: true})
}

// getOptions say which lab a test needs: its shape, and whether it starts
// from the pristine base root (fresh) or from a snapshot.
type getOptions struct {
	nodes    int
	release  debian.Release
	fresh    bool
	snapshot string
}

func get(t testing.TB, o getOptions) *lab.Lab {
	t.Helper()
	if !inMain {
		t.Fatal("labtest: call labtest.Main(m) from TestMain, so that the lab is taken down after the tests")
	}
	testenv.NeedLong(t, "boots the lab")
	if err := lab.CheckHost(); err != nil {
		testenv.Missing(t, "%v", err)
	}
	var l *lab.Lab
	lockedLab(func() {
		ctx := context.Background()
		progress := testlog.Writer(t)
		if release == nil {
			r, err := lab.Flock(ctx, SessionLockPath, progress)
			if err != nil {
				t.Fatal(err)
			}
			release = r
		}
		used = true
		if o.fresh || o.snapshot != "" || !reusable {
			if err := lab.Down(ctx, lab.Options{Dir: Dir, Progress: progress}); err != nil {
				t.Fatal(err)
			}
		}
		up := lab.Options{Dir: Dir, Nodes: o.nodes, Release: o.release.Suite, Snapshot: o.snapshot, Progress: progress}
		var err error
		if l, err = lab.Up(ctx, up); err != nil {
			t.Fatal(err)
		}
		reusable = o.snapshot == ""
		// The lab may outlive this test; a later t.Log on it would panic.
		l.SetProgress(nil)
	})
	return l
}

// lockedLab runs f holding the binary's lab mutex: one test goroutine at a
// time changes the lab.
func lockedLab(f func()) {
	mu.Lock()
	defer mu.Unlock()
	f()
}
