package rootfs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeDebootstrap stands in for debootstrap: it records its arguments and
// makes a root with an os-release in the target (its second-last argument).
func fakeDebootstrap(t *testing.T, calls *[][]string) Runner {
	t.Helper()
	return Runner{Command: func(argv []string) (*exec.Cmd, error) {
		*calls = append(*calls, argv)
		target := argv[len(argv)-2]
		return exec.Command("sh", "-c", `mkdir -p "$1/etc" && echo debian > "$1/etc/os-release"`, "fake", target), nil
	}}
}

func useHostSources(t *testing.T, sources string) {
	t.Helper()
	saved := hostRoot
	hostRoot = writeSources(t, map[string]string{"sources.list": sources})
	t.Cleanup(func() { hostRoot = saved })
}

func TestBaseEnsure(t *testing.T) {
	useHostSources(t, "deb http://mirror.example.org/debian trixie main\n")
	cache := t.TempDir()
	b := Base{
		Dir:     filepath.Join(cache, "trixie-python3"),
		Suite:   "trixie",
		Include: []string{"python3", "adduser"},
		Debs:    filepath.Join(cache, "debs"),
	}
	// What a killed build left: never reused.
	if err := os.MkdirAll(filepath.Join(b.BuildDir(), "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	var finished []string
	finish := func(_ context.Context, root string, m Mirrors) error {
		finished = append(finished, root, m.Main)
		if _, err := os.Stat(filepath.Join(root, "junk")); err == nil {
			t.Error("half-built root reused")
		}
		return nil
	}
	if err := b.Ensure(context.Background(), fakeDebootstrap(t, &calls), nil, finish); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"debootstrap", "--variant=minbase", "--include=python3,adduser",
		"--cache-dir=" + b.Debs, "trixie", b.BuildDir(), "http://mirror.example.org/debian"}}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("debootstrap calls\n got %q\nwant %q", calls, want)
	}
	if !reflect.DeepEqual(finished, []string{b.BuildDir(), "http://mirror.example.org/debian"}) {
		t.Errorf("finish got %q", finished)
	}
	if !b.Ready() {
		t.Error("not ready after the build")
	}
	if _, err := os.Stat(b.BuildDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("build dir left: %v", err)
	}
	// A ready base is not built again.
	if err := b.Ensure(context.Background(), fakeDebootstrap(t, &calls), nil, finish); err != nil || len(calls) != 1 {
		t.Errorf("second Ensure: %v, %d debootstrap runs", err, len(calls))
	}
}

func TestBaseEnsureFailureLeavesNoRoot(t *testing.T) {
	useHostSources(t, "deb http://deb.debian.org/debian bookworm main\n")
	var calls [][]string
	tests := []struct {
		name   string
		run    Runner
		finish Finish
		want   string
	}{
		{"debootstrap fails", Runner{Command: func([]string) (*exec.Cmd, error) {
			return exec.Command("sh", "-c", "echo 'E: Couldn'\\''t download packages' >&2; exit 1"), nil
		}}, nil, "stage 1: "},
		{"finish fails", fakeDebootstrap(t, &calls), func(context.Context, string, Mirrors) error {
			return errors.New("stage 2: apt-get failed")
		}, "stage 2: apt-get failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Base{Dir: filepath.Join(t.TempDir(), "bookworm"), Suite: "bookworm"}
			err := b.Ensure(context.Background(), tt.run, nil, tt.finish)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q...", err, tt.want)
			}
			if b.Ready() {
				t.Error("a failed build looks finished")
			}
		})
	}
}

func TestDebootstrapArgsWithoutExtras(t *testing.T) {
	b := Base{Dir: "/var/cache/debship/testroot/bookworm-python3", Suite: "bookworm"}
	got := b.debootstrapArgs("http://deb.debian.org/debian")
	want := []string{"debootstrap", "--variant=minbase", "bookworm",
		"/var/cache/debship/testroot/bookworm-python3.building", "http://deb.debian.org/debian"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
}

// A root older than MaxAge, or one asked to Refresh, is built again; the
// replaced root is deleted unless a user holds it.
func TestBaseEnsureRefresh(t *testing.T) {
	useHostSources(t, "deb http://deb.debian.org/debian trixie main\n")
	tests := []struct {
		name      string
		age       time.Duration
		maxAge    time.Duration
		refresh   bool
		inUse     bool
		rebuilt   bool
		oldRemain bool
	}{
		{"fresh", time.Hour, 24 * time.Hour, false, false, false, false},
		{"no max age", 48 * time.Hour, 0, false, false, false, false},
		{"older than a day", 25 * time.Hour, 24 * time.Hour, false, false, true, false},
		{"refresh", time.Minute, 24 * time.Hour, true, false, true, false},
		{"refresh while in use", time.Minute, 24 * time.Hour, true, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Base{Dir: filepath.Join(t.TempDir(), "trixie"), Suite: "trixie", MaxAge: tt.maxAge}
			var calls [][]string
			if err := b.Ensure(context.Background(), fakeDebootstrap(t, &calls), nil, nil); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-tt.age)
			if err := os.Chtimes(b.Dir, old, old); err != nil {
				t.Fatal(err)
			}
			if tt.inUse {
				release, err := b.Use()
				if err != nil {
					t.Fatal(err)
				}
				defer release()
			}
			b.Refresh = tt.refresh
			if err := b.Ensure(context.Background(), fakeDebootstrap(t, &calls), nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := len(calls) == 2; got != tt.rebuilt {
				t.Errorf("rebuilt %v, want %v", got, tt.rebuilt)
			}
			if !b.Ready() || (tt.rebuilt && b.Age() > time.Minute) {
				t.Errorf("after Ensure: ready %v, age %s", b.Ready(), b.Age())
			}
			old2, _ := filepath.Glob(b.Dir + ".old-*")
			if (len(old2) > 0) != tt.oldRemain {
				t.Errorf("replaced roots left: %v, want some: %v", old2, tt.oldRemain)
			}
		})
	}
}
