package venv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSandboxPaths(t *testing.T) {
	sb := sandbox{root: "/var/tmp/run-1/root"}
	tests := []struct {
		host, in string
		inside   bool
	}{
		{"/var/tmp/run-1/root/build/1", "/build/1", true},
		{"/var/tmp/run-1/root", "/", true},
		{"/var/tmp/run-1/rootx/a", "/var/tmp/run-1/rootx/a", false}, // a sibling, not below
		{"/home/me/app", "/home/me/app", false},
	}
	for _, tt := range tests {
		if got := sb.in(tt.host); got != tt.in {
			t.Errorf("in(%s) = %s, want %s", tt.host, got, tt.in)
		}
		if got := sb.inside(tt.host); got != tt.inside {
			t.Errorf("inside(%s) = %v", tt.host, got)
		}
		if tt.inside && sb.host(tt.in) != filepath.Clean(tt.host) {
			t.Errorf("host(%s) = %s, want %s", tt.in, sb.host(tt.in), tt.host)
		}
	}
	// Without a root every path is the host's.
	if (sandbox{}).in("/x/y") != "/x/y" || (sandbox{}).host("/x/y") != "/x/y" || !(sandbox{}).inside("/x") {
		t.Error("the host sandbox translates paths")
	}
}

// A library's real path in another release's root follows that root's
// links, absolute ones included, never the host's.
func TestRealPathIn(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/lib/x86_64-linux-gnu"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libz.so.1.3.1"), nil, 0o644))
	must(os.Symlink("usr/lib", filepath.Join(root, "lib")))
	must(os.Symlink("libz.so.1.3.1", filepath.Join(root, "usr/lib/x86_64-linux-gnu/libz.so.1")))
	must(os.Symlink("/usr/lib/x86_64-linux-gnu/libz.so.1", filepath.Join(root, "usr/lib/x86_64-linux-gnu/libabs.so")))
	must(os.Symlink("loop", filepath.Join(root, "loop")))
	tests := []struct{ in, want string }{
		{"/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1.3.1"},
		{"/usr/lib/x86_64-linux-gnu/libabs.so", "/usr/lib/x86_64-linux-gnu/libz.so.1.3.1"},
		{"/usr/lib/x86_64-linux-gnu/libz.so.1.3.1", "/usr/lib/x86_64-linux-gnu/libz.so.1.3.1"},
		{"/lib/missing.so", ""},
		{"/loop", ""},
	}
	for _, tt := range tests {
		got, err := realPathIn(root, tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("realPathIn(%s) = %s, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("realPathIn(%s) = %q, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}
