package ship_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gitlab.com/debship/debship/ci/webhook"
	"gitlab.com/debship/debship/cluster/inventory/inventorytest"
	"gitlab.com/debship/debship/cluster/ship"
)

// inventoryTOML is the smallest valid one: two nodes, no storage.
const inventoryTOML = `name = "c"
ssh = {user = "admin", key = "id_ed25519", known-hosts = "known_hosts"}
node = [{name = "a", address = "192.0.2.1"}, {name = "b", address = "192.0.2.2"}]
floating-ip = {address = "192.0.2.10/24", interface = "eth0", provider = "ipaddr2"}
app = {package = "hello-web", port = 8080}
network = {type = "none"}
`

// writeInventory writes doc as cluster.toml in a new directory, with the
// (empty) key and known_hosts files it names beside it.
func writeInventory(t *testing.T, doc string) string {
	t.Helper()
	p := inventorytest.Write(t, t.TempDir(), doc)
	for _, name := range []string{"id_ed25519", "known_hosts"} {
		if err := os.WriteFile(filepath.Join(filepath.Dir(p), name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// The receiver's rolling deploy checks the inventory when it is made, not
// when the first deploy comes.
func TestRollingDeployer(t *testing.T) {
	p := writeInventory(t, inventoryTOML)
	cfg := &webhook.Config{File: "/etc/debship/webhook.toml", Inventory: p}
	if d, err := ship.RollingDeployer(cfg); err != nil || d == nil {
		t.Errorf("with an inventory: %v, %v", d, err)
	}
	cfg.Inventory = filepath.Join(filepath.Dir(p), "missing.toml")
	if _, err := ship.RollingDeployer(cfg); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing inventory: %v", err)
	}
	cfg.Inventory = ""
	if _, err := ship.RollingDeployer(cfg); err == nil || err.Error() != "/etc/debship/webhook.toml has no inventory to deploy to" {
		t.Errorf("no inventory: %v", err)
	}
}

// TestReceiverTarget: a receiver without [gitlab] target reads the nodes'
// release before each fetch; when it cannot, the error says which key
// names the release instead.
func TestReceiverTarget(t *testing.T) {
	// No usable key, and loopback addresses on a port nothing listens on:
	// the nodes cannot be reached.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	inv := strings.NewReplacer("192.0.2.1", "127.0.0.1", "192.0.2.2", "127.0.0.2", `known-hosts = "known_hosts"`, fmt.Sprintf(`known-hosts = "known_hosts", port = %d`, port)).Replace(inventoryTOML)
	p := writeInventory(t, inv)
	const file = "/etc/debship/webhook.toml"
	cases := []struct {
		name, inventory, want string
	}{
		{"no inventory", "", "^/etc/debship/webhook.toml names no \\[gitlab\\] target and no inventory to read the nodes' Debian release from$"},
		{"missing inventory", filepath.Join(filepath.Dir(p), "missing.toml"), "missing.toml"},
		{"nodes not reached", p, "(?s)^read the nodes' Debian release: .*; or name the release with \\[gitlab\\] target in /etc/debship/webhook.toml$"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := ship.ReceiverTarget(&webhook.Config{File: file, Inventory: c.inventory})
			got, err := target(context.Background())
			if err == nil || !regexp.MustCompile(c.want).MatchString(err.Error()) {
				t.Errorf("got %q, %v; want an error matching %s", got, err, c.want)
			}
		})
	}
}
