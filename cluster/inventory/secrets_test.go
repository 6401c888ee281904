package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFencePassword: the password comes from a file only its owner can
// read (relative to the inventory) or from the environment; every refusal
// names the inventory's line and never the password.
func TestFencePassword(t *testing.T) {
	const secret = " s3cr3t pw"
	withKey := func(kv string) string {
		return strings.Replace(twoNodes, `agent = "fence_ipmilan"`, "agent = \"fence_ipmilan\"\n"+kv, 1)
	}
	tests := []struct {
		name    string
		doc     string
		file    string // written next to the inventory as "pw"
		mode    os.FileMode
		env     string // $FENCE_PW
		want    string // the password, or
		wantErr string // the error after "<inventory>:"
	}{
		{"file, relative, trailing newline dropped", withKey(`password-file = "pw"`), secret + "\n", 0o600, "", secret, ""},
		{"file readable by the group", withKey(`password-file = "pw"`), secret, 0o640, "", "",
			"19: the fence password file DIR/pw can be read by its group (mode 0640), but a secret is for its owner alone; chmod 600 DIR/pw"},
		{"file writable by the group", withKey(`password-file = "pw"`), secret, 0o620, "", "",
			"19: the fence password file DIR/pw can be changed or run by its group (mode 0620), but a secret is for its owner alone; chmod 600 DIR/pw"},
		{"file readable by everyone", withKey(`password-file = "pw"`), secret, 0o604, "", "",
			"19: the fence password file DIR/pw can be read by every user (mode 0604), but a secret is for its owner alone; chmod 600 DIR/pw"},
		{"empty file", withKey(`password-file = "pw"`), "\n", 0o600, "", "",
			"19: the fence password file DIR/pw is empty; write the agent's password into it"},
		{"missing file", withKey(`password-file = "nope"`), "", 0, "", "",
			"19: the fence password file DIR/nope does not exist; write the secret into it (chmod 600) or correct the path"},
		{"two lines", withKey(`password-file = "pw"`), "one\ntwo\n", 0o600, "", "",
			"19: the fence password has a line break or NUL inside; fence agents read one line"},
		{"env", withKey(`password-env = "FENCE_PW"`), "", 0, secret, secret, ""},
		{"env unset", withKey(`password-env = "FENCE_PW"`), "", 0, "", "",
			"19: the fence password: $FENCE_PW is empty or not set; export it, or set password-file in [fencing]"},
		{"none", twoNodes, "", 0, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeInventory(t, tt.doc)
			dir := filepath.Dir(p)
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(tt.file), tt.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(filepath.Join(dir, "pw"), tt.mode)
			}
			t.Setenv("FENCE_PW", tt.env)
			inv, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			pw, err := inv.FencePassword()
			if tt.wantErr != "" {
				want := p + ":" + strings.ReplaceAll(tt.wantErr, "DIR", dir)
				if err == nil || err.Error() != want {
					t.Fatalf("got %v\nwant %s", err, want)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Fatal("the error shows the password")
				}
				return
			}
			if err != nil || pw != tt.want {
				t.Fatalf("got %q, %v; want %q", pw, err, tt.want)
			}
		})
	}
}

// doTokenInventory is an inventory whose DigitalOcean token is in the file
// tok beside it, with the given mode.
func doTokenInventory(t *testing.T, mode os.FileMode) (inv *Inventory, p, tok string) {
	t.Helper()
	doc := strings.Replace(twoNodes, "address = \"10.10.0.100/24\"\n",
		"address = \"198.51.100.7/32\"\nprovider = \"digitalocean\"\n[floating-ip.digitalocean]\ntoken-file = \"do-token\"\n", 1)
	p = writeInventory(t, doc)
	tok = filepath.Join(filepath.Dir(p), "do-token")
	if err := os.WriteFile(tok, []byte("dop_v1_secret\n"), mode); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return inv, p, tok
}

func TestDOTokenFileMode(t *testing.T) {
	inv, p, tok := doTokenInventory(t, 0o644)
	want := p + ":16: the DigitalOcean token file " + tok + " can be read by its group and every user (mode 0644), but a secret is for its owner alone; chmod 600 " + tok
	if _, err := inv.DOToken(); err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	os.Chmod(tok, 0o600)
	if got, err := inv.DOToken(); err != nil || got != "dop_v1_secret" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestDOTokenSwapped: a token file checked once and then swapped for a
// symbolic link or for a named pipe another process writes into is
// refused; debship never sends what it has not checked.
func TestDOTokenSwapped(t *testing.T) {
	const planted = "dop_v1_planted"
	swaps := []struct {
		name, want string
		swap       func(t *testing.T, tok string)
	}{
		{"symbolic link", " is a symbolic link, which could be pointed elsewhere behind your back; name the file itself (readlink -f TOK)",
			func(t *testing.T, tok string) {
				other := filepath.Join(t.TempDir(), "other")
				if err := os.WriteFile(other, []byte(planted), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(other, tok); err != nil {
					t.Fatal(err)
				}
			}},
		{"named pipe", " is a named pipe (FIFO), not a regular file; put the secret in a plain file (chmod 600)",
			func(t *testing.T, tok string) {
				if err := syscall.Mkfifo(tok, 0o600); err != nil {
					t.Fatal(err)
				}
				feedFIFO(t, tok, planted)
			}},
	}
	for _, sw := range swaps {
		t.Run(sw.name, func(t *testing.T) {
			inv, p, tok := doTokenInventory(t, 0o600)
			if got, err := inv.DOToken(); err != nil || got != "dop_v1_secret" {
				t.Fatalf("before the swap: %q, %v", got, err)
			}
			if err := os.Remove(tok); err != nil {
				t.Fatal(err)
			}
			sw.swap(t, tok)
			want := p + ":16: the DigitalOcean token file " + tok + strings.ReplaceAll(sw.want, "TOK", tok)
			if got, err := inv.DOToken(); err == nil || err.Error() != want {
				t.Fatalf("got %q, %v\nwant %s", got, err, want)
			}
		})
	}
}

// feedFIFO writes s into the named pipe p whenever a reader opens it,
// until the test ends.
func feedFIFO(t *testing.T, p, s string) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			// Non-blocking: the open fails (ENXIO) until a reader is there.
			if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.WriteString(s)
				f.Close()
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
}

// TestRequireFencing: plan and apply refuse a cluster without a fence
// agent in one sentence that says why and how to fix it, unless the
// inventory accepts the risk (and then every plan and apply warns).
func TestRequireFencing(t *testing.T) {
	const why = "the cluster has no fence agent, so a node that hangs instead of dying keeps the app, and on two nodes " +
		"a network partition leaves both holding the floating IP (Pacemaker calls a cluster without fencing unsupported); " +
		"set agent in [fencing] to your hosting's fence agent (fence_ipmilan, fence_virsh, fence_aws, … see \"pcs stonith list\") " +
		"with its options and password-file, or set accept-no-fencing = true in [fencing] to accept the risk"
	noTable := strings.Replace(twoNodes, "[fencing]\nagent = \"fence_ipmilan\"\noptions = { ip = \"10.0.0.1\", username = \"fence\" }\n", "", 1)
	tests := []struct {
		name, doc, want string
		warns           bool
	}{
		{"an agent", twoNodes, "", false},
		{"no [fencing]", noTable, ": " + why, false},
		{"agent none", strings.Replace(twoNodes, `agent = "fence_ipmilan"`, `agent = "none"`, 1), ":18: " + why, false},
		{"accepted", noTable + "[fencing]\naccept-no-fencing = true\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.doc == twoNodes && tt.name != "an agent" {
				t.Fatal("the case did not change the inventory")
			}
			p := writeInventory(t, tt.doc)
			inv, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			err = inv.RequireFencing()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || err.Error() != p+tt.want):
				t.Fatalf("got %v\nwant %s", err, p+tt.want)
			}
			if got := strings.Contains(strings.Join(inv.Warnings(), "\n"), "NO FENCING (accept-no-fencing = true)"); got != tt.warns {
				t.Errorf("warning shown: %v, want %v", got, tt.warns)
			}
		})
	}
}
