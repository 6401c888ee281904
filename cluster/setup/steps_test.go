package setup

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gitlab.com/debship/debship/cluster/transport"
)

// TestFileStateOwner runs fileState's check on this machine: a file with
// the right content and mode that is not root's is a change to make (its
// owner could rewrite it), and so is a link in the file's place.
func TestFileStateOwner(t *testing.T) {
	ctx := context.Background()
	tg := &Target{T: &transport.Local{Name: "here"}}
	content := []byte("PermitRootLogin no\n")
	p := filepath.Join(t.TempDir(), "sshd.conf")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(want State) {
		t.Helper()
		st, err := fileState(ctx, tg, p, content, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if st != want {
			t.Errorf("got %+v, want %+v", st, want)
		}
	}
	if os.Geteuid() == 0 {
		check(Done())
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		check(Todo("%s belongs to 65534:65534, want root (0:0)", p))
	} else {
		// The test's user owns the file: not root.
		check(Todo("%s belongs to %d:%d, want root (0:0)", p, os.Geteuid(), os.Getegid()))
	}
	link := p + ".link"
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	p = link
	check(Todo("%s has mode 777, want 644", link))
}
