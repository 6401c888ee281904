package transport

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

type fixture struct {
	srv        *testServer
	cfg        Config
	knownHosts string
}

func setup(t *testing.T, user string, known bool) fixture {
	t.Helper()
	dir := t.TempDir()
	userKey, keyFile := writeKey(t, dir)
	hostKey := newSigner(t)
	srv := startServer(t, hostKey, userKey.PublicKey())
	host, port, _ := net.SplitHostPort(srv.addr)
	p, _ := strconv.Atoi(port)
	kh := filepath.Join(dir, "known_hosts")
	var line string
	if known {
		line = knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, hostKey.PublicKey()) + "\n"
	}
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	return fixture{srv: srv, knownHosts: kh, cfg: Config{
		Node: "node1", Host: host, Port: p, User: user, Key: keyFile, KnownHosts: kh,
		Timeout: 2 * time.Second, Attempts: 2,
	}}
}

func TestRunAndErrors(t *testing.T) {
	for _, user := range []string{"root", "admin"} {
		t.Run(user, func(t *testing.T) {
			f := setup(t, user, true)
			ctx := context.Background()
			c, err := Dial(ctx, f.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			out, err := Output(ctx, c, "echo hello; echo to-stderr >&2")
			if err != nil || out != "hello" {
				t.Fatalf("Output = %q, %v", out, err)
			}
			_, _, err = c.Run(ctx, "echo partial; echo 'it broke' >&2; exit 3")
			var ce *CommandError
			if !errors.As(err, &ce) || ce.ExitCode != 3 || ExitCode(err) != 3 {
				t.Fatalf("want CommandError exit 3, got %#v", err)
			}
			for _, want := range []string{"node1", "exit 3", "exited with 3", "it broke"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			last := f.srv.commands[len(f.srv.commands)-1]
			if wrapped := strings.HasPrefix(last, "sudo -n -H -- sh -c "); wrapped != (user != "root") {
				t.Errorf("user %s: command sent as %q", user, last)
			}
			// Upload: atomic, mode, directories created.
			dst := filepath.Join(t.TempDir(), "sub", "file.conf")
			if err := c.Upload(ctx, dst, []byte("a'b\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(dst)
			st, _ := os.Stat(dst)
			if err != nil || string(b) != "a'b\n" || st.Mode().Perm() != 0o640 {
				t.Fatalf("uploaded %q mode %v, %v", b, st.Mode(), err)
			}
			// Context cancellation ends a hanging command.
			cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			if _, _, err := c.Run(cctx, "sleep 5"); err == nil || time.Since(start) > 3*time.Second {
				t.Fatalf("cancelled run: %v after %s", err, time.Since(start))
			}
		})
	}
}

func TestHostKeys(t *testing.T) {
	ctx := context.Background()

	t.Run("unknown key refused by default", func(t *testing.T) {
		f := setup(t, "root", false)
		_, err := Dial(ctx, f.cfg)
		var hk *HostKeyError
		if !errors.As(err, &hk) || hk.Changed {
			t.Fatalf("want unknown-key error, got %v", err)
		}
		if !strings.Contains(err.Error(), "--accept-new-host-keys") || !strings.Contains(err.Error(), "SHA256:") {
			t.Errorf("error does not say how to fix it: %v", err)
		}
		if f.srv.logins != 0 {
			t.Errorf("logged in although the host key is unknown")
		}
	})

	t.Run("accept new records the key once", func(t *testing.T) {
		f := setup(t, "root", false)
		cfg := f.cfg
		cfg.AcceptNewHostKeys = true
		c, err := Dial(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		b, _ := os.ReadFile(f.knownHosts)
		if strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), f.srv.hostKey.PublicKey().Type()) {
			t.Fatalf("known_hosts after TOFU:\n%s", b)
		}
		// Now strict mode accepts it, and nothing more is appended.
		c, err = Dial(ctx, f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		b2, _ := os.ReadFile(f.knownHosts)
		if string(b2) != string(b) {
			t.Fatalf("known_hosts changed on a known host:\n%s", b2)
		}
	})

	t.Run("changed key is always refused", func(t *testing.T) {
		f := setup(t, "root", false)
		other := newSigner(t)
		line := knownhosts.Line([]string{knownhosts.Normalize(f.srv.addr)}, other.PublicKey()) + "\n"
		os.WriteFile(f.knownHosts, []byte(line), 0o600)
		cfg := f.cfg
		cfg.AcceptNewHostKeys = true
		_, err := Dial(ctx, cfg)
		var hk *HostKeyError
		if !errors.As(err, &hk) || !hk.Changed || !strings.Contains(err.Error(), "HOST KEY CHANGED") {
			t.Fatalf("want changed-key error, got %v", err)
		}
		b, _ := os.ReadFile(f.knownHosts)
		if string(b) != line {
			t.Fatalf("known_hosts was modified:\n%s", b)
		}
	})

	t.Run("missing known_hosts file", func(t *testing.T) {
		f := setup(t, "root", true)
		cfg := f.cfg
		cfg.KnownHosts = filepath.Join(t.TempDir(), "nope")
		if _, err := Dial(ctx, cfg); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestLoginAndNetworkErrors(t *testing.T) {
	ctx := context.Background()
	f := setup(t, "root", true)

	cfg := f.cfg
	_, cfg.Key = writeKey(t, t.TempDir())
	_, err := Dial(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("wrong key: %v", err)
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	cfg = f.cfg
	cfg.Port, _ = strconv.Atoi(port)
	start := time.Now()
	_, err = Dial(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("closed port: %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("2 attempts took %s, want about 1 s", d)
	}
}

func TestPrefixed(t *testing.T) {
	var b strings.Builder
	w := Prefixed(&b, "node1")
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\n"))
	if b.String() != "node1 | one\nnode1 | two\n" {
		t.Fatalf("%q", b.String())
	}
}

var _ = ssh.KeyAlgoED25519

func TestLocal(t *testing.T) {
	l := &Local{Name: "here", Root: t.TempDir()}
	ctx := context.Background()
	if out, err := Output(ctx, l, "echo hi"); err != nil || out != "hi" {
		t.Fatalf("%q %v", out, err)
	}
	if _, _, err := l.Run(ctx, "echo no >&2; exit 4"); ExitCode(err) != 4 || !strings.Contains(err.Error(), "no") {
		t.Fatalf("%v", err)
	}
	if err := l.Upload(ctx, "/etc/x/y.conf", []byte("z"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(l.Root, "etc/x/y.conf")); string(b) != "z" {
		t.Fatalf("%q", b)
	}
}
