package setup

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
)

// fakeT answers commands from a table (first matching substring wins) and
// records what it was asked and what was uploaded. A test that plays state
// across commands answers first with respond (ok false: not its command).
type fakeT struct {
	name    string
	mu      sync.Mutex
	answers [][2]string
	ran     []string
	uploads map[string]string
	respond func(cmd string) (out string, ok bool, err error)
}

func newFake(name string, answers ...[2]string) *fakeT {
	return &fakeT{name: name, answers: answers, uploads: map[string]string{}}
}

func (f *fakeT) Node() string { return f.name }
func (f *fakeT) Close() error { return nil }
func (f *fakeT) Run(ctx context.Context, cmd string) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, cmd)
	if f.respond != nil {
		if out, ok, err := f.respond(cmd); ok {
			return []byte(out), nil, err
		}
	}
	for _, a := range f.answers {
		if strings.Contains(cmd, a[0]) {
			if strings.HasPrefix(a[1], "!") {
				return nil, []byte(a[1][1:]), &transport.CommandError{Node: f.name, Cmd: cmd, ExitCode: 1, Stderr: a[1][1:]}
			}
			return []byte(a[1]), nil, nil
		}
	}
	if cmd == "cat /etc/os-release" {
		return []byte(fakeOSRelease), nil, nil
	}
	return nil, nil, nil
}

// fakeOSRelease is a Debian 13 node's, unless a test answers otherwise.
const fakeOSRelease = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\nID=debian\n"

func (f *fakeT) Upload(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads[path] = string(data)
	return nil
}

func fakeConns(inv *inventory.Inventory, answers ...[2]string) map[string]transport.Transport {
	m := map[string]transport.Transport{}
	for _, n := range inv.Nodes {
		m[n.Name] = newFake(n.Name, answers...)
	}
	return m
}

// exampleInventory is examples/cluster.toml with its secret where it says:
// the DigitalOcean token, for the reserved IP and the fence agent, in
// $DIGITALOCEAN_TOKEN.
func exampleInventory(t *testing.T, doToken string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Load("../../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DIGITALOCEAN_TOKEN", doToken)
	return inv
}
