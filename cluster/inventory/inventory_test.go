package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const validInventory = `name = "lab"
[ssh]
user = "admin"
port = 22
key = "id_ed25519"
known-hosts = "known_hosts"

[[node]]
name = "node1"
address = "10.231.0.11"

[[node]]
name = "node2"
address = "10.231.0.12"
private-address = "10.231.1.12"
user = "deploy"
port = 2222
key = "/etc/debship/node2.key"

[[node]]
name = "node3"
address = "10.231.0.13"
role = "tiebreaker"

[floating-ip]
address = "10.231.0.100/24"
interface = "eth0"
provider = "ipaddr2"

[app]
package = "hello-web"
port = 8080
health-path = "/healthz"

[storage]
volume = "shared"
mount = "/srv/shared"
brick = "/bricks/shared"

[network]
type = "none"
`

func writeInventory(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadInventory(t *testing.T) {
	p := writeInventory(t, validInventory)
	inv, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	want := &Inventory{
		Name: "lab",
		SSH:  SSH{User: "admin", Port: 22, Key: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts")},
		Nodes: []Node{
			{Name: "node1", Address: "10.231.0.11"},
			{Name: "node2", Address: "10.231.0.12", PrivateAddress: "10.231.1.12", User: "deploy", Port: 2222, Key: "/etc/debship/node2.key"},
			{Name: "node3", Address: "10.231.0.13", Role: RoleTiebreaker},
		},
		FloatingIP: FloatingIP{Address: "10.231.0.100/24", Interface: "eth0", Provider: ProviderIPaddr2},
		App:        App{Package: "hello-web", Port: 8080, HealthPath: "/healthz"},
		Storage:    &Storage{Volume: "shared", Mount: "/srv/shared", Brick: "/bricks/shared"},
		Network:    Network{Type: NetworkNone},
		Path:       p,
	}
	inv.lines = nil
	if !reflect.DeepEqual(inv, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", inv, want)
	}
	if got := inv.Nodes[0].PrivateAddr(); got != "10.231.0.11" {
		t.Errorf("private address defaults to address: got %s", got)
	}
	if got := inv.SSHFor(inv.Nodes[1]); got != (SSH{User: "deploy", Port: 2222, Key: "/etc/debship/node2.key", KnownHosts: want.SSH.KnownHosts}) {
		t.Errorf("node overrides: got %+v", got)
	}
	if got := len(inv.Members()); got != 2 {
		t.Errorf("members: got %d, want 2", got)
	}
	if tb, ok := inv.Tiebreaker(); !ok || tb.Name != "node3" {
		t.Errorf("tiebreaker: got %v %v", tb, ok)
	}
	if got := inv.FloatingPrefix().String(); got != "10.231.0.100/24" {
		t.Errorf("floating prefix: %s", got)
	}
}

func TestInventoryDefaults(t *testing.T) {
	p := writeInventory(t, `name = "c"
[[node]]
name = "a"
address = "192.0.2.1"
[[node]]
name = "b"
address = "192.0.2.2"
[floating-ip]
address = "192.0.2.100/24"
[app]
package = "hello-web"
port = 8080
[hardening]
permit-root-login = "prohibit-password" # debship logs in as root here
`)
	inv, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if inv.SSH.User != "root" || inv.SSH.Port != 22 || inv.SSH.Key != "" || inv.SSH.KnownHosts != "" {
		t.Errorf("ssh defaults: %+v", inv.SSH)
	}
	if inv.FloatingIP.Provider != ProviderIPaddr2 || inv.App.HealthPath != "/healthz" || inv.Network.Type != NetworkWireGuard || inv.Storage != nil {
		t.Errorf("defaults: %+v %+v %+v %+v", inv.FloatingIP, inv.App, inv.Network, inv.Storage)
	}
}

func TestInventoryWriteRoundTrip(t *testing.T) {
	inv, err := Load(writeInventory(t, validInventory))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sub", "cluster.toml")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	// Paths below the new file's directory are written relative to it.
	inv.SSH.Key = filepath.Join(filepath.Dir(out), "id_ed25519")
	if err := inv.Write(out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), "key = 'id_ed25519'") && !strings.Contains(string(b), `key = "id_ed25519"`) {
		t.Errorf("key not written relative:\n%s", b)
	}
	back, err := Load(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	inv.Path, inv.lines, back.lines = out, nil, nil
	if !reflect.DeepEqual(back, inv) {
		t.Fatalf("round trip:\ngot  %+v\nwant %+v", back, inv)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".cluster-*")); len(m) != 0 {
		t.Errorf("temp files left: %v", m)
	}
}

// edit returns validInventory with one line replaced (old must exist).
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(validInventory, old) {
		t.Fatalf("test bug: %q not in the inventory", old)
	}
	return strings.Replace(validInventory, old, new, 1)
}

func TestInventoryErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  func(t *testing.T) string
		want []string // each one line of the error, after "<path>:"
	}{
		{"unknown key in node", func(t *testing.T) string { return edit(t, `name = "node2"`, "name = \"node2\"\nfoo = 1") },
			[]string{`14: unknown key "foo" in [[node]]; remove it or check the spelling`}},
		{"unknown key at the top", func(t *testing.T) string { return edit(t, `name = "lab"`, "name = \"lab\"\nclsuter = 1") },
			[]string{`2: unknown key "clsuter" at the top level; remove it or check the spelling (see examples/cluster.toml)`}},
		{"unknown key in table", func(t *testing.T) string { return edit(t, "port = 22", "prot = 22") },
			[]string{`4: unknown key "prot" in [ssh]; remove it or check the spelling (see examples/cluster.toml)`}},
		{"two unknown keys", func(t *testing.T) string {
			return edit(t, "[app]\n", "[app]\npkg = 1\n") + "[network.extra]\nx = 1\n"
		}, []string{
			`31: unknown key "pkg" in [app]; remove it or check the spelling (see examples/cluster.toml)`,
			`43: unknown table [network.extra]; remove it or check the spelling (see examples/cluster.toml)`,
		}},
		{"syntax error", func(t *testing.T) string { return edit(t, "[app]", "[app") },
			[]string{`30:5: TOML syntax error: expected ']' to close table name; fix the file`}},
		{"wrong type", func(t *testing.T) string { return edit(t, "port = 8080", `port = "8080"`) },
			[]string{`32: app.port must be an integer, not a string; fix the value (see examples/cluster.toml)`}},
		{"wrong type float", func(t *testing.T) string { return edit(t, "port = 22", "port = 22.5") },
			[]string{`4: ssh.port must be an integer, not a float; fix the value (see examples/cluster.toml)`}},
		{"node not a table", func(t *testing.T) string { return "node = 3\n" },
			[]string{`1: node must be a list (or an array of tables [[...]]), not an integer; fix the value (see examples/cluster.toml)`}},
		{"key defined twice", func(t *testing.T) string { return edit(t, "port = 8080", "port = 8080\nport = 8081") },
			[]string{`33:1: TOML syntax error: key port is already defined; fix the file`}},
		{"no name", func(t *testing.T) string { return edit(t, "name = \"lab\"\n", "") },
			[]string{` the cluster has no name; add name = "..." at the top`}},
		{"bad ssh port", func(t *testing.T) string { return edit(t, "port = 22", "port = 70000") },
			[]string{`4: ssh port 70000 is not a TCP port (1-65535)`}},
		{"duplicate node name", func(t *testing.T) string { return edit(t, `name = "node2"`, `name = "node1"`) },
			[]string{`13: duplicate node name "node1" (first at line 9)`}},
		{"duplicate address", func(t *testing.T) string { return edit(t, `address = "10.231.0.13"`, `address = "10.231.0.11"`) },
			[]string{`22: node "node3" has the same address 10.231.0.11 as node "node1"`}},
		{"duplicate private address", func(t *testing.T) string {
			return edit(t, `private-address = "10.231.1.12"`, `private-address = "10.231.0.11"`)
		}, []string{`15: node "node2" has the same private-address 10.231.0.11 as node "node1"`}},
		{"bad private address", func(t *testing.T) string {
			return edit(t, `private-address = "10.231.1.12"`, `private-address = "node2.lan"`)
		}, []string{`15: node "node2": private-address "node2.lan" is not an IP address such as 192.0.2.10 or 2001:db8::10; give the node's address on the private network, or remove the key`}},
		{"node without name and address", func(t *testing.T) string {
			return edit(t, "name = \"node3\"\naddress = \"10.231.0.13\"\n", "")
		}, []string{`20: node #3 has no name`, `20: node #3 has no address`}},
		{"bad node name", func(t *testing.T) string { return edit(t, `name = "node3"`, `name = "Node_3"`) },
			[]string{`21: node name "Node_3" is not a host name: a lower-case letter, then lower-case letters, digits and '-', at most 63 characters, not ending in '-'; rename it, e.g. name = "web1"`}},
		{"unknown role", func(t *testing.T) string { return edit(t, `role = "tiebreaker"`, `role = "arbiter"`) },
			[]string{`23: node "node3": unknown role "arbiter"; the only role is "tiebreaker"`}},
		{"two tiebreakers", func(t *testing.T) string {
			return edit(t, "name = \"node2\"\n", "name = \"node2\"\nrole = \"tiebreaker\"\n") +
				"[[node]]\nname = \"node4\"\naddress = \"10.231.0.14\"\n"
		}, []string{`24: node "node3": only one node can be the tie-breaker`}},
		{"too few nodes", func(t *testing.T) string {
			return edit(t, "name = \"node2\"\n", "name = \"node2\"\nrole = \"tiebreaker\"\n")
		},
			[]string{`24: node "node3": only one node can be the tie-breaker`,
				` a cluster needs at least 2 nodes that are not the tie-breaker, this one has 1; add [[node]] tables`}},
		{"bad node port", func(t *testing.T) string { return edit(t, "port = 2222", "port = -1") },
			[]string{`17: node "node2": port -1 is not a TCP port (1-65535)`}},
		{"no floating ip", func(t *testing.T) string { return edit(t, "address = \"10.231.0.100/24\"\n", "") },
			[]string{`25: [floating-ip] address is missing; give it with its prefix, e.g. "10.0.0.100/24"`}},
		{"floating ip without prefix", func(t *testing.T) string { return edit(t, `"10.231.0.100/24"`, `"10.231.0.100"`) },
			[]string{`26: [floating-ip] address "10.231.0.100" needs a prefix length; write e.g. "10.0.0.100/24"`}},
		{"floating ip garbage", func(t *testing.T) string { return edit(t, `"10.231.0.100/24"`, `"10.231.0.300/24"`) },
			[]string{`26: [floating-ip] address "10.231.0.300/24" is not an IP address with a prefix length; write e.g. "10.0.0.100/24"`}},
		{"floating ip is the network", func(t *testing.T) string { return edit(t, `"10.231.0.100/24"`, `"10.231.0.0/24"`) },
			[]string{`26: floating IP "10.231.0.0/24" is the network address of its subnet`}},
		{"floating ip is a node", func(t *testing.T) string { return edit(t, `"10.231.0.100/24"`, `"10.231.0.12/24"`) },
			[]string{`26: floating IP 10.231.0.12 is already the address of node "node2"`}},
		{"unknown provider", func(t *testing.T) string { return edit(t, `provider = "ipaddr2"`, `provider = "aws"`) },
			[]string{`28: unknown floating-ip provider "aws"; use "ipaddr2" or "digitalocean"`}},
		{"no app package", func(t *testing.T) string { return edit(t, "package = \"hello-web\"\n", "") },
			[]string{`30: [app] package is missing: the Debian package the cluster runs`}},
		{"bad app package", func(t *testing.T) string { return edit(t, `"hello-web"`, `"Hello Web"`) },
			[]string{`31: [app] package "Hello Web" is not a Debian package name: lower-case letters, digits, '+', '-' and '.', at least two characters, starting with a letter or digit; write the package's name as debship build names it`}},
		{"bad app port", func(t *testing.T) string { return edit(t, "port = 8080", "port = 0") },
			[]string{`32: app port 0 is not a TCP port (1-65535)`}},
		{"bad health path", func(t *testing.T) string { return edit(t, `"/healthz"`, `"healthz"`) },
			[]string{`33: [app] health-path "healthz" is not a URL path: it starts with '/', and spaces, quotes, '\', '` + "`" + `', '#' and non-ASCII characters are percent-encoded (e.g. %20 for a space); write e.g. health-path = "/healthz"`}},
		{"bad storage", func(t *testing.T) string {
			return edit(t, "volume = \"shared\"\nmount = \"/srv/shared\"\nbrick = \"/bricks/shared\"",
				"volume = \"my volume\"\nmount = \"srv\"\nbrick = \"bricks\"")
		}, []string{
			`36: [storage] volume "my volume" is not a gluster volume name: letters, digits, '_' and '-', not starting with '-', at most 64 characters, not "all"; write e.g. volume = "shared"`,
			`37: [storage] mount "srv" is not a clean absolute path of letters, digits and ". _ - +" (no spaces, quotes, ".." or other characters: the path goes into /etc/fstab, gluster's host:path syntax and shell commands); write e.g. mount = "/srv/shared"`,
			`38: [storage] brick "bricks" is not a clean absolute path of letters, digits and ". _ - +" (no spaces, quotes, ".." or other characters: the path goes into /etc/fstab, gluster's host:path syntax and shell commands); write e.g. brick = "/bricks/shared"`,
		}},
		{"unknown network", func(t *testing.T) string { return edit(t, `type = "none"`, `type = "vpn"`) },
			[]string{`41: unknown network type "vpn"; use "wireguard", "tinc" or "none"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantLoadErrors(t, tt.doc(t), tt.want) })
	}
}

func TestValidateWithoutFile(t *testing.T) {
	inv := &Inventory{Name: "x", Nodes: []Node{{Name: "a", Address: "192.0.2.1"}}}
	inv.setDefaults()
	err := inv.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "inventory: ") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadInventoryMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("got %v", err)
	}
}

// wantLoadErrors loads doc as an inventory file and wants exactly the
// errors want, each "line: message" after the file's path.
func wantLoadErrors(t *testing.T, doc string, want []string) {
	t.Helper()
	p := writeInventory(t, doc)
	_, err := Load(p)
	if err == nil {
		t.Fatal("no error")
	}
	var full []string
	for _, w := range want {
		full = append(full, p+":"+w)
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, full) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(full, "\n  "))
	}
}
