package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/testenv"
)

// TestRead: only a regular file of the user (or root) without any
// permission for group or others is read, and every refusal names the
// file and the fix.
func TestRead(t *testing.T) {
	file := func(mode os.FileMode) func(p string) {
		return func(p string) {
			if err := os.WriteFile(p, []byte("s3cr3t\n"), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name  string
		setup func(p string)
		want  string // the error with P for the path; "" reads s3cr3t
	}{
		{"owner only", file(0o600), ""},
		{"read-only", file(0o400), ""},
		{"group-readable", file(0o640), "P can be read by its group (mode 0640), but a secret is for its owner alone; chmod 600 P"},
		{"world-readable", file(0o604), "P can be read by every user (mode 0604), but a secret is for its owner alone; chmod 600 P"},
		{"readable by all", file(0o644), "P can be read by its group and every user (mode 0644), but a secret is for its owner alone; chmod 600 P"},
		{"group-writable", file(0o620), "P can be changed or run by its group (mode 0620), but a secret is for its owner alone; chmod 600 P"},
		{"missing", func(string) {}, "P does not exist; write the secret into it (chmod 600) or correct the path"},
		{"symbolic link to a private file", func(p string) {
			file(0o600)(p + ".real")
			if err := os.Symlink(p+".real", p); err != nil {
				t.Fatal(err)
			}
		}, "P is a symbolic link, which could be pointed elsewhere behind your back; name the file itself (readlink -f P)"},
		{"directory", func(p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "P is a directory, not a regular file; put the secret in a plain file (chmod 600)"},
		{"named pipe", func(p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "P is a named pipe (FIFO), not a regular file; put the secret in a plain file (chmod 600)"},
		{"too big", func(p string) {
			if err := os.WriteFile(p, make([]byte, MaxSize+1), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "P has 1048577 bytes, more than a secret holds (1048576 at most); name the file that holds just the secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "secret")
			tt.setup(p)
			b, err := readWithin(t, p)
			if tt.want == "" {
				if err != nil || string(b) != "s3cr3t\n" {
					t.Fatalf("got %q, %v", b, err)
				}
				return
			}
			if want := strings.ReplaceAll(tt.want, "P", p); err == nil || err.Error() != want {
				t.Fatalf("got %q, %v\nwant %s", b, err, want)
			}
		})
	}
}

// TestReadOwner: a private file of another user is refused, since that
// user can read and change the secret; one of root is read.
func TestReadOwner(t *testing.T) {
	testenv.NeedRoot(t) // to give a file to another user; fails in CI
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(p); err != nil || string(b) != "s3cr3t" {
		t.Fatalf("root's own file: %q, %v", b, err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	nobody := userName(65534)
	want := p + " belongs to " + nobody + ", not to root, so " + nobody + " can read or change the secret; chown root " + p
	if _, err := Read(p); err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// readWithin is Read that fails the test instead of hanging (a FIFO
// opened for reading waits for a writer).
func readWithin(t *testing.T, p string) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := Read(p)
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("reading %s hangs", p)
		return nil, nil
	}
}
