package ship_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.com/debship/debship/ci/webhook"
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

// The receiver's rolling deploy checks the inventory when it is made, not
// when the first deploy comes.
func TestRollingDeployer(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"cluster.toml": inventoryTOML, "id_ed25519": "", "known_hosts": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &webhook.Config{File: "/etc/debship/webhook.toml", Inventory: filepath.Join(dir, "cluster.toml")}
	if d, err := ship.RollingDeployer(cfg); err != nil || d == nil {
		t.Errorf("with an inventory: %v, %v", d, err)
	}
	cfg.Inventory = filepath.Join(dir, "missing.toml")
	if _, err := ship.RollingDeployer(cfg); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing inventory: %v", err)
	}
	cfg.Inventory = ""
	if _, err := ship.RollingDeployer(cfg); err == nil || err.Error() != "/etc/debship/webhook.toml has no inventory to deploy to" {
		t.Errorf("no inventory: %v", err)
	}
}
