package deploy

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// raceForLock runs a deploy of 2.0-1 on the fake cluster once for each
// CIB command it sends on the deploy lock, with another deploy taking the
// lock over with --force-unlock (Unlock, then acquireLock, as the lock
// step does) just before that command. prepare sets the cluster up, check
// judges each run; the other deploy's lock is bob's.
func raceForLock(t *testing.T, prepare func(f *fakeCluster, o *Options),
	check func(t *testing.T, f *fakeCluster, res *Result, err error, bob *Lock)) {
	v1 := makeDeb(t, "hello-web", "1.0-1")
	v2 := makeDeb(t, "hello-web", "2.0-1")
	for at := 1; ; at++ {
		f := newFakeCluster("1.0-1")
		f.seed(t, v1)
		o, _ := fakeOptions(f, t, v2)
		prepare(f, &o)
		bob := &Lock{ID: "20260102T030405Z-b0b000", Holder: "bob", Host: "desk", PID: 9, Kind: KindDeploy, Version: "3.0-1", Since: time.Now()}
		sent, taking := 0, false
		f.beforeLock = func(cmd string) {
			if taking {
				return // bob's own commands
			}
			if sent++; sent == at {
				taking = true
				defer func() { taking = false }()
				t2 := f.conns()["node2"]
				if _, err := Unlock(context.Background(), t2); err != nil {
					t.Errorf("bob's --force-unlock: %v", err)
				}
				if err := acquireLock(context.Background(), t2, bob); err != nil {
					t.Errorf("bob takes the lock: %v", err)
				}
			}
		}
		res, err := Run(context.Background(), o)
		if sent < at {
			if at == 1 {
				t.Fatal("the deploy sent no command on the lock")
			}
			return // bob came after every command of the deploy
		}
		t.Run(fmt.Sprintf("bob before lock command %d", at), func(t *testing.T) { check(t, f, res, err, bob) })
	}
}

// heldBy is the ID of the lock the fake CIB holds, "" if none.
func heldBy(t *testing.T, f *fakeCluster) string {
	t.Helper()
	if f.lock == "" {
		return ""
	}
	l, err := parseLock([]byte(f.lock))
	if err != nil {
		t.Fatal(err)
	}
	return l.ID
}

// Bob takes the lock over (--force-unlock) while a deploy ends: whenever
// that happens, bob's lock must still be there once the deploy is done.
// Else bob's deploy runs without a lock and a third one starts beside it.
func TestRunFakeRacingDeployKeepsTheNewLock(t *testing.T) {
	raceForLock(t, func(*fakeCluster, *Options) {}, func(t *testing.T, f *fakeCluster, res *Result, err error, bob *Lock) {
		if got := heldBy(t, f); got != bob.ID {
			t.Errorf("after the deploy (%s, %v) the lock is %q, want bob's %s", res.Outcome, err, got, bob.ID)
		}
		var pe *PreflightError
		if err != nil && !(errors.As(err, &pe) && pe.Lock != nil && pe.Lock.Lock.ID == bob.ID) {
			t.Errorf("the deploy failed otherwise than refused for bob's lock: %v", err)
		}
	})
}

// A --force-unlock removes the lock it read and names it, not one that a
// deploy took in between: here a dead deploy's lock is there, the deploy
// is run with --force-unlock, and bob takes the lock over at every moment.
// Bob's lock may only go when the deploy says it took bob's over.
func TestRunFakeForceUnlockRemovesOnlyTheLockItNames(t *testing.T) {
	dead := &Lock{ID: "20260101T000000Z-dead00", Holder: "ci job 7", Host: "runner", PID: 3, Kind: KindDeploy, Version: "1.5-1", Since: time.Now()}
	raceForLock(t, func(f *fakeCluster, o *Options) {
		f.lock = dead.xml()
		o.ForceUnlock = true
	}, func(t *testing.T, f *fakeCluster, res *Result, err error, bob *Lock) {
		took := ""
		if res.TakenOver != nil {
			took = res.TakenOver.ID
		}
		if got := heldBy(t, f); got != bob.ID && took != bob.ID {
			t.Errorf("bob's lock is gone (lock %q) while the deploy (%s, %v) says it took over %q", got, res.Outcome, err, took)
		}
	})
}

// --force-unlock removes a lock whatever its id (one written by hand may
// hold quotes): the id stays one XPath string literal.
func TestXPathString(t *testing.T) {
	for in, want := range map[string]string{
		"20260101T000000Z-abcdef": `'20260101T000000Z-abcdef'`,
		`o'brien`:                 `"o'brien"`,
		`a'b"c`:                   `concat('a', "'", 'b"c')`,
	} {
		if got := xpathString(in); got != want {
			t.Errorf("xpathString(%q) = %s, want %s", in, got, want)
		}
	}
}
