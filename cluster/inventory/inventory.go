// Package inventory is the description of one cluster (cluster.toml) and
// the way into it: loading and validating the file (Load), its options with
// defaults, and SSH connections to its nodes (Connect, ConnectAll). Setup,
// status, deploy, the lab and the webhook all start from an Inventory.
package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"gitlab.com/debship/debship/internal/grammar"
	"gitlab.com/debship/debship/internal/tomlfile"
)

// Inventory is a cluster.toml: the one description of a cluster that setup,
// deploy, status, the webhook and the lab all read.
//
// Load resolves relative paths (keys, known_hosts) against the
// file's directory and fills in defaults; Write turns paths below the target
// file's directory back into relative ones, so a lab directory can be moved.
type Inventory struct {
	Name       string     `toml:"name"`
	SSH        SSH        `toml:"ssh"`
	Nodes      []Node     `toml:"node"`
	FloatingIP FloatingIP `toml:"floating-ip"`
	App        App        `toml:"app"`
	Storage    *Storage   `toml:"storage,omitempty"`
	Network    Network    `toml:"network"`
	HA         *HA        `toml:"ha,omitempty"`
	Fencing    *Fencing   `toml:"fencing,omitempty"`
	Hardening  *Hardening `toml:"hardening,omitempty"`
	// Lab marks the one-machine lab (debship lab): only there may fencing
	// be fence_dummy, which fences nothing.
	Lab bool `toml:"lab,omitempty"`

	// Path is the file the inventory was read from; error messages name it.
	Path string `toml:"-"`
	// lines maps a key path ("node.1.name", "floating-ip") to its line.
	lines map[string]int
}

// SSH holds the connection defaults for every node.
type SSH struct {
	User       string `toml:"user"`                  // default "root"
	Port       int    `toml:"port"`                  // default 22
	Key        string `toml:"key,omitempty"`         // private key file; empty: ssh-agent
	KnownHosts string `toml:"known-hosts,omitempty"` // strict host-key checking against this file; empty: ~/.ssh/known_hosts
}

// Node is one host. User, Port and Key override [ssh] for this node.
type Node struct {
	Name           string `toml:"name"`
	Address        string `toml:"address"`                   // where SSH reaches it
	PrivateAddress string `toml:"private-address,omitempty"` // cluster traffic; default Address
	Role           string `toml:"role,omitempty"`            // "" or RoleTiebreaker
	User           string `toml:"user,omitempty"`
	Port           int    `toml:"port,omitempty"`
	Key            string `toml:"key,omitempty"`
}

// RoleTiebreaker marks a small third host that only votes (quorum device,
// gluster arbiter) and never runs the app.
const RoleTiebreaker = "tiebreaker"

// FloatingIP is the address clients use; it moves to a healthy node.
type FloatingIP struct {
	Address   string `toml:"address"`             // with prefix, e.g. "10.0.0.100/24"
	Interface string `toml:"interface,omitempty"` // nic on the nodes; empty: IPaddr2 picks by route
	Provider  string `toml:"provider"`            // ProviderIPaddr2 (default) or ProviderDigitalOcean
	// DigitalOcean configures the reserved-IP agent (provider "digitalocean").
	DigitalOcean *DigitalOcean `toml:"digitalocean,omitempty"`
}

// Floating IP providers.
const (
	ProviderIPaddr2      = "ipaddr2"
	ProviderDigitalOcean = "digitalocean"
)

// App is the Debian package the cluster runs as a cloned service.
type App struct {
	Package    string `toml:"package"`
	Port       int    `toml:"port"`
	HealthPath string `toml:"health-path"` // default "/healthz"
	// Unit is the systemd unit pacemaker runs; default "<package>.service".
	Unit string `toml:"unit,omitempty"`
	// User is the app's system user ([tool.debship] user); default the
	// package name. With [storage], setup pins its uid and gid on every
	// node and gives it <mount>/<package>.
	User string `toml:"user,omitempty"`
}

// Storage is an optional GlusterFS volume mounted on every node.
type Storage struct {
	Volume string `toml:"volume"`
	Mount  string `toml:"mount"`
	Brick  string `toml:"brick"`
	// AcceptSplitBrainRisk allows replica 2 when there is no tie-breaker.
	AcceptSplitBrainRisk bool `toml:"accept-split-brain-risk,omitempty"`
	// PingTimeout is network.ping-timeout in seconds (default 10): how long
	// writes block after a node vanishes without closing its connections.
	PingTimeout int `toml:"ping-timeout,omitempty"`
	// Force passes "force" to volume create (e.g. bricks on the root file
	// system, which gluster refuses otherwise).
	Force bool `toml:"force,omitempty"`
}

// Network is the private network between the nodes.
type Network struct {
	Type string `toml:"type"` // NetworkWireGuard (default), NetworkTinc or NetworkNone
	// Subnet holds the tunnel addresses (wireguard, tinc); node i (in file
	// order) gets host i+1. Default 10.8.0.0/24.
	Subnet string `toml:"subnet,omitempty"`
	// Port is the tunnel's port on the nodes' private (else public)
	// addresses: default 51820/udp (wireguard) or 655 (tinc).
	Port int `toml:"port,omitempty"`
}

// Private network types.
const (
	NetworkWireGuard = "wireguard"
	NetworkTinc      = "tinc"
	NetworkNone      = "none"
)

// PrivateAddr is where cluster traffic for the node goes.
func (n Node) PrivateAddr() string {
	if n.PrivateAddress != "" {
		return n.PrivateAddress
	}
	return n.Address
}

// SSHFor returns the connection settings of one node: its own overrides on
// top of [ssh].
func (inv *Inventory) SSHFor(n Node) SSH {
	s := inv.SSH
	if n.User != "" {
		s.User = n.User
	}
	if n.Port != 0 {
		s.Port = n.Port
	}
	if n.Key != "" {
		s.Key = n.Key
	}
	return s
}

// Members are the nodes that run the app (all but the tie-breaker).
func (inv *Inventory) Members() []Node {
	var out []Node
	for _, n := range inv.Nodes {
		if n.Role != RoleTiebreaker {
			out = append(out, n)
		}
	}
	return out
}

// Tiebreaker returns the tie-breaker node, if there is one.
func (inv *Inventory) Tiebreaker() (Node, bool) {
	for _, n := range inv.Nodes {
		if n.Role == RoleTiebreaker {
			return n, true
		}
	}
	return Node{}, false
}

// inventoryHint explains the unknown keys that are not typos.
func inventoryHint(key []string) string {
	if k := strings.Join(key, "."); k == "floating-ip.digitalocean.token" || k == "fencing.token" {
		return "the DigitalOcean token must not be in the inventory (it would end up in version control); " +
			"put it in a file and set token-file, or export it and set token-env"
	}
	switch strings.Join(key, ".") {
	case "fencing.password", "fencing.passwd", "fencing.password-script":
		return "the fence password must not be in the inventory (it would end up in version control and the CIB); " +
			"put it in a file only you can read and set password-file, or export it and set password-env"
	}
	if key[0] == "node" && len(key) == 2 {
		return fmt.Sprintf("unknown key %q in [[node]]; remove it or check the spelling", key[1])
	}
	return ""
}

// Load reads, resolves and validates an inventory. Unknown keys are
// errors: a misspelt key silently ignored would configure the wrong cluster.
func Load(path string) (*Inventory, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	inv := &Inventory{Path: path}
	dec := toml.NewDecoder(bytes.NewReader(doc)).DisallowUnknownFields()
	if err := dec.Decode(inv); err != nil {
		return nil, tomlfile.Error(path, err, tomlfile.Options{SeeAlso: "examples/cluster.toml", Hint: inventoryHint})
	}
	inv.Path = path
	inv.lines = tomlfile.Lines(doc)
	inv.setDefaults()
	if err := inv.resolvePaths(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	return inv, nil
}

func (inv *Inventory) setDefaults() {
	if inv.SSH.User == "" {
		inv.SSH.User = "root"
	}
	if inv.SSH.Port == 0 {
		inv.SSH.Port = 22
	}
	if inv.FloatingIP.Provider == "" {
		inv.FloatingIP.Provider = ProviderIPaddr2
	}
	if inv.App.HealthPath == "" {
		inv.App.HealthPath = "/healthz"
	}
	if inv.Network.Type == "" {
		inv.Network.Type = NetworkWireGuard
	}
}

// resolvePaths makes key and known-hosts paths absolute: relative ones are
// relative to the inventory's directory, "~/" is the user's home.
func (inv *Inventory) resolvePaths(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("inventory %s: %w", inv.Path, err)
	}
	resolve := func(p *string) error {
		switch {
		case *p == "" || filepath.IsAbs(*p):
		case strings.HasPrefix(*p, "~/"):
			home, err := os.UserHomeDir()
			if err != nil {
				return fmt.Errorf("inventory %s: %s: %w", inv.Path, *p, err)
			}
			*p = filepath.Join(home, (*p)[2:])
		default:
			*p = filepath.Join(abs, *p)
		}
		return nil
	}
	if err := resolve(&inv.SSH.Key); err != nil {
		return err
	}
	if err := resolve(&inv.SSH.KnownHosts); err != nil {
		return err
	}
	for i := range inv.Nodes {
		if err := resolve(&inv.Nodes[i].Key); err != nil {
			return err
		}
	}
	if d := inv.FloatingIP.DigitalOcean; d != nil {
		if err := resolve(&d.TokenFile); err != nil {
			return err
		}
	}
	if f := inv.Fencing; f != nil {
		if err := resolve(&f.PasswordFile); err != nil {
			return err
		}
		if err := resolve(&f.TokenFile); err != nil {
			return err
		}
	}
	return nil
}

// Write saves the inventory to path atomically (temp file and rename), with
// paths below path's directory written relative to it.
func (inv *Inventory) Write(path string) error {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write inventory: %w", err)
	}
	out := *inv
	out.Nodes = append([]Node(nil), inv.Nodes...)
	rel := func(p string) string {
		if !filepath.IsAbs(p) {
			return p
		}
		if r, err := filepath.Rel(dir, p); err == nil && r != ".." && !strings.HasPrefix(r, "../") {
			return r
		}
		return p
	}
	out.SSH.Key, out.SSH.KnownHosts = rel(out.SSH.Key), rel(out.SSH.KnownHosts)
	for i := range out.Nodes {
		out.Nodes[i].Key = rel(out.Nodes[i].Key)
	}
	if f := inv.Fencing; f != nil {
		c := *f
		c.PasswordFile, c.TokenFile = rel(c.PasswordFile), rel(c.TokenFile)
		out.Fencing = &c
	}
	body, err := toml.Marshal(&out)
	if err != nil {
		return fmt.Errorf("write inventory: %w", err)
	}
	head := "# cluster inventory, read by debship cluster plan/apply/status and deploy.\n"
	tmp, err := os.CreateTemp(dir, ".cluster-*.toml")
	if err != nil {
		return fmt.Errorf("write inventory: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.WriteString(head + string(body)); err != nil {
		tmp.Close()
		return fmt.Errorf("write inventory: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write inventory: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write inventory: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write inventory: %w", err)
	}
	return nil
}

// Validate checks what the cluster phases rely on. Errors name the file and
// line when the inventory was loaded from a file. Every value that reaches a
// command, a file name or a generated file on the nodes is checked against
// its grammar (internal/grammar) here, before anything connects.
func (inv *Inventory) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, inv.errorAt(key, format, args...))
	}
	// rule reports a value that breaks its grammar: what it is, the rule,
	// and the fix.
	rule := func(key, what, value string, err error, fix string) {
		if err != nil {
			add(key, "%s %q %v; %s", what, value, err, fix)
		}
	}
	if inv.Name == "" {
		add("", "the cluster has no name; add name = \"...\" at the top")
	} else {
		rule("name", "the cluster name", inv.Name, grammar.HostName(inv.Name), "write e.g. name = \"web\"")
	}
	rule("ssh.user", "[ssh] user", inv.SSH.User, grammar.User(inv.SSH.User), "write the login name of the admin user, e.g. user = \"admin\"")
	if inv.SSH.Port < 0 || inv.SSH.Port > 65535 {
		add("ssh.port", "ssh port %d is not a TCP port (1-65535)", inv.SSH.Port)
	}

	names, addrs := map[string]int{}, map[string]int{}
	tiebreakers := 0
	for i, n := range inv.Nodes {
		at := func(k string) string { return "node." + strconv.Itoa(i) + k }
		label := fmt.Sprintf("node %q", n.Name)
		switch {
		case n.Name == "":
			add(at(""), "node #%d has no name", i+1)
			label = fmt.Sprintf("node #%d", i+1)
		case grammar.HostName(n.Name) != nil:
			rule(at(".name"), "node name", n.Name, grammar.HostName(n.Name), "rename it, e.g. name = \"web1\"")
		default:
			if j, dup := names[n.Name]; dup {
				add(at(".name"), "duplicate node name %q (first at line %d)", n.Name, inv.line("node."+strconv.Itoa(j)+".name"))
			} else {
				names[n.Name] = i
			}
		}
		switch {
		case n.Address == "":
			add(at(""), "%s has no address", label)
		case grammar.Addr(n.Address) != nil:
			rule(at(".address"), label+": address", n.Address, grammar.Addr(n.Address),
				"give the node's IP address (it goes into the firewall rules, corosync and gluster, which need addresses)")
		default:
			if j, dup := addrs[n.Address]; dup {
				add(at(".address"), "%s has the same address %s as node %q", label, n.Address, inv.Nodes[j].Name)
			} else {
				addrs[n.Address] = i
			}
		}
		if n.PrivateAddress != "" {
			if err := grammar.Addr(n.PrivateAddress); err != nil {
				rule(at(".private-address"), label+": private-address", n.PrivateAddress, err, "give the node's address on the private network, or remove the key")
			} else if j, dup := addrs["private "+n.PrivateAddress]; dup {
				add(at(".private-address"), "%s has the same private-address %s as node %q", label, n.PrivateAddress, inv.Nodes[j].Name)
			}
		}
		addrs["private "+n.PrivateAddr()] = i
		switch n.Role {
		case "":
		case RoleTiebreaker:
			tiebreakers++
			if tiebreakers > 1 {
				add(at(".role"), "%s: only one node can be the tie-breaker", label)
			}
		default:
			add(at(".role"), "%s: unknown role %q; the only role is %q", label, n.Role, RoleTiebreaker)
		}
		if n.User != "" {
			rule(at(".user"), label+": user", n.User, grammar.User(n.User), "write the login name, e.g. user = \"admin\"")
		}
		if n.Port < 0 || n.Port > 65535 {
			add(at(".port"), "%s: port %d is not a TCP port (1-65535)", label, n.Port)
		}
	}
	if m := len(inv.Members()); m < 2 {
		add("", "a cluster needs at least 2 nodes that are not the tie-breaker, this one has %d; add [[node]] tables", m)
	}

	inv.validateFloatingIP(add)
	if f := inv.FloatingIP.Interface; f != "" {
		rule("floating-ip.interface", "[floating-ip] interface", f, grammar.Interface(f), "write the nodes' network interface, e.g. interface = \"eth0\", or remove the key")
	}
	inv.validateOptions(add, rule)

	switch {
	case inv.App.Package == "":
		add("app", "[app] package is missing: the Debian package the cluster runs")
	default:
		rule("app.package", "[app] package", inv.App.Package, grammar.DebianPackage(inv.App.Package), "write the package's name as debship build names it")
	}
	if inv.App.Port < 1 || inv.App.Port > 65535 {
		add("app.port", "app port %d is not a TCP port (1-65535)", inv.App.Port)
	}
	rule("app.health-path", "[app] health-path", inv.App.HealthPath, grammar.URLPath(inv.App.HealthPath), "write e.g. health-path = \"/healthz\"")
	if inv.App.Unit != "" {
		rule("app.unit", "[app] unit", inv.App.Unit, grammar.SystemdUnit(inv.App.Unit), "write the unit's name, e.g. unit = \"hello-web.service\", or remove the key (default <package>.service)")
	}
	if u := inv.App.User; u != "" {
		rule("app.user", "[app] user", u, grammar.User(u), "write the package's [tool.debship] user, or remove the key (default the package name)")
		if u == "root" {
			add("app.user", "[app] user must not be root: the app runs as its own system user; remove the key")
		}
	}

	if s := inv.Storage; s != nil {
		rule("storage.volume", "[storage] volume", s.Volume, grammar.GlusterVolume(s.Volume), "write e.g. volume = \"shared\"")
		rule("storage.mount", "[storage] mount", s.Mount, grammar.Path(s.Mount), "write e.g. mount = \"/srv/shared\"")
		rule("storage.brick", "[storage] brick", s.Brick, grammar.Path(s.Brick), "write e.g. brick = \"/bricks/shared\"")
	}

	switch inv.Network.Type {
	case NetworkWireGuard, NetworkTinc, NetworkNone:
	default:
		add("network.type", "unknown network type %q; use %q, %q or %q", inv.Network.Type, NetworkWireGuard, NetworkTinc, NetworkNone)
	}
	return errors.Join(errs...)
}

func (inv *Inventory) validateFloatingIP(add func(key, format string, args ...any)) {
	f := inv.FloatingIP
	switch {
	case f.Address == "":
		add("floating-ip", "[floating-ip] address is missing; give it with its prefix, e.g. \"10.0.0.100/24\"")
	case !strings.Contains(f.Address, "/"):
		add("floating-ip.address", "[floating-ip] address %q needs a prefix length; write e.g. \"10.0.0.100/24\"", f.Address)
	default:
		p, err := netip.ParsePrefix(f.Address)
		if err != nil {
			add("floating-ip.address", "[floating-ip] address %q is not an IP address with a prefix length; write e.g. \"10.0.0.100/24\"", f.Address)
			break
		}
		if p.Addr() == p.Masked().Addr() && p.Bits() < p.Addr().BitLen() {
			add("floating-ip.address", "floating IP %q is the network address of its subnet", f.Address)
		}
		for _, n := range inv.Nodes {
			if n.Address == p.Addr().String() || n.PrivateAddr() == p.Addr().String() {
				add("floating-ip.address", "floating IP %s is already the address of node %q", p.Addr(), n.Name)
			}
		}
		inv.checkFloatingSubnet(p, add)
	}
	switch f.Provider {
	case ProviderIPaddr2, ProviderDigitalOcean:
	default:
		add("floating-ip.provider", "unknown floating-ip provider %q; use %q or %q", f.Provider, ProviderIPaddr2, ProviderDigitalOcean)
	}
}

// FloatingPrefix returns the floating IP with its prefix (valid after
// Validate).
func (inv *Inventory) FloatingPrefix() netip.Prefix {
	p, _ := netip.ParsePrefix(inv.FloatingIP.Address)
	return p
}

// errorAt formats "file:line: message". The line is that of key, or of the
// nearest enclosing table that has one.
func (inv *Inventory) errorAt(key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	where := inv.Path
	if where == "" {
		where = "inventory"
	}
	if l := inv.line(key); l > 0 {
		return fmt.Errorf("%s:%d: %s", where, l, msg)
	}
	return fmt.Errorf("%s: %s", where, msg)
}

func (inv *Inventory) line(key string) int {
	for key != "" {
		if l, ok := inv.lines[key]; ok {
			return l
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}
