package transport

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"gitlab.com/debship/debship/internal/shtest"
)

// plantLink puts a symbolic link at name pointing to a file outside the
// upload's directory, as another user of a shared directory could, and
// returns the file's path.
func plantLink(t *testing.T, name string) (victim string) {
	t.Helper()
	victim = filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("victim\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, name); err != nil {
		t.Fatal(err)
	}
	return victim
}

// checkUploaded: target is a regular file with data and mode (and
// root's, when the test runs as root), the victim (if any) is untouched,
// and the directory holds nothing else but keep.
func checkUploaded(t *testing.T, target, victim string, data string, mode os.FileMode, keep ...string) {
	t.Helper()
	if b, err := os.ReadFile(victim); victim != "" && (err != nil || string(b) != "victim\n") {
		t.Errorf("the file behind the planted link was changed to %q (%v)", b, err)
	}
	fi, err := os.Lstat(target)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
		t.Fatalf("target is %v, want a regular file of mode %04o", fi.Mode(), mode)
	}
	if b, _ := os.ReadFile(target); string(b) != data {
		t.Errorf("target holds %q, want %q", b, data)
	}
	if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (st.Uid != 0 || st.Gid != 0) {
		t.Errorf("target owned by %d:%d, want root's 0:0", st.Uid, st.Gid)
	}
	ents, _ := os.ReadDir(filepath.Dir(target))
	for _, e := range ents {
		if n := e.Name(); n != filepath.Base(target) && !slices.Contains(keep, n) {
			t.Errorf("left behind in the directory: %s", n)
		}
	}
}

// TestUploadScript runs the upload command a node runs (sh -c, data on
// stdin) in a directory where the temp name of old, fixed
// (.debship-upload.<name>), is a symbolic link to another file, and where
// the target itself is one: neither file behind them changes.
func TestUploadScript(t *testing.T) {
	const data = "new content\n"
	run := func(target string, mode os.FileMode) error {
		c := exec.Command("sh", "-c", uploadScript(target, mode))
		c.Stdin = strings.NewReader(data)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Logf("%s", out)
		}
		return err
	}
	// A space and a quote: the names go through Quote.
	dir := filepath.Join(t.TempDir(), "etc app")
	t.Run("link at the old temp name", func(t *testing.T) {
		target := filepath.Join(dir, "it's.conf")
		old := filepath.Join(dir, ".debship-upload.it's.conf")
		victim := plantLink(t, old)
		if err := run(target, 0o640); err != nil {
			t.Fatal(err)
		}
		checkUploaded(t, target, victim, data, 0o640, filepath.Base(old))
	})
	t.Run("target is a link", func(t *testing.T) {
		target := filepath.Join(dir, "linked.conf")
		victim := plantLink(t, target)
		if err := run(target, 0o600); err != nil {
			t.Fatal(err)
		}
		checkUploaded(t, target, victim, data, 0o600, "it's.conf", ".debship-upload.it's.conf")
	})
	t.Run("setgid directory of another group", func(t *testing.T) {
		// Files made in it take its group; an upload is root's (checked
		// by checkUploaded when the test runs as root).
		d := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(d, 0, 65534); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(d, os.ModeSetgid|0o755); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(d, "app.conf")
		if err := run(target, 0o644); err != nil {
			t.Fatal(err)
		}
		checkUploaded(t, target, "", data, 0o644)
	})
	t.Run("target is a directory", func(t *testing.T) {
		d := t.TempDir()
		target := filepath.Join(d, "conf.d")
		if err := os.Mkdir(target, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := run(target, 0o644); err == nil {
			t.Fatal("an upload onto a directory succeeded")
		}
		if ents, _ := os.ReadDir(d); len(ents) != 1 {
			t.Errorf("left behind: %v", ents)
		}
		if ents, _ := os.ReadDir(target); len(ents) != 0 {
			t.Errorf("the file went into the directory: %v", ents)
		}
	})
}

// TestUploadScriptQuotes: a hostile target path stays one literal word.
func TestUploadScriptQuotes(t *testing.T) {
	for _, h := range shtest.Hostile {
		if found, err := shtest.Literal(uploadScript("/srv/"+h+"/"+h+".conf", 0o644), h); err != nil || !found {
			t.Errorf("%q: found %v, %v", h, found, err)
		}
	}
}

// TestLocalUploadPlantedLink: the local transport, too, never writes
// through a link at its old fixed temp name (<target>.debship-upload).
func TestLocalUploadPlantedLink(t *testing.T) {
	l := &Local{Name: "here", Root: t.TempDir()}
	target := filepath.Join(l.Root, "etc", "x.conf")
	old := target + ".debship-upload"
	victim := plantLink(t, old)
	if err := l.Upload(context.Background(), "/etc/x.conf", []byte("z"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkUploaded(t, target, victim, "z", 0o600, filepath.Base(old))
}
