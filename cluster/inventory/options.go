package inventory

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"gitlab.com/debship/debship/internal/grammar"
)

// HA tunes corosync and pacemaker.
type HA struct {
	// Token is corosync's totem token in ms (default 1000): failover takes
	// about token + consensus (1.2 × token) + 0.3 s; corosync's own default
	// of 3000 gives about 7 s.
	Token int `toml:"token,omitempty"`
	// DCDeadtime is pacemaker's dc-deadtime (default "2s"; pacemaker's 20 s
	// makes every cluster start 20 s slower).
	DCDeadtime string `toml:"dc-deadtime,omitempty"`
	// Stickiness is resource-stickiness (default 100): a node coming back
	// does not pull the floating IP back.
	Stickiness *int `toml:"stickiness,omitempty"`
	// QuorumAlgorithm is the qdevice algorithm with a tie-breaker: "ffsplit"
	// (default) or "lms".
	QuorumAlgorithm string `toml:"quorum-algorithm,omitempty"`
}

// Fencing is how pacemaker makes sure a lost node is really down.
type Fencing struct {
	// Agent is a fence agent (fence_ipmilan, fence_virsh, …), "fence_dummy"
	// (lab only: fences nothing), or "none"/"" (no fencing: plan and apply
	// refuse unless AcceptNoFencing).
	Agent string `toml:"agent,omitempty"`
	// Options are the agent's stonith options (pcs stonith create … k=v).
	// pcmk_host_list defaults to the nodes that run the app. Secrets are
	// refused here: they would end up in version control, in the CIB and
	// in the nodes' process list.
	Options map[string]string `toml:"options,omitempty"`
	// PasswordFile (relative to the inventory, not readable by group or
	// others) or PasswordEnv names where the agent's login password is
	// read on the machine that runs debship. It reaches the nodes as a
	// root-only file, and the CIB holds only the command that prints it
	// (the agent's password_script).
	PasswordFile string `toml:"password-file,omitempty"`
	PasswordEnv  string `toml:"password-env,omitempty"`
	// AcceptNoFencing lets plan and apply set up a cluster without a fence
	// agent, knowingly (as accept-split-brain-risk does for replica 2).
	AcceptNoFencing bool `toml:"accept-no-fencing,omitempty"`

	// agent = "digitalocean" (debship's fence_digitalocean). It uses the
	// token and api-url of [floating-ip.digitalocean]; with another
	// floating-IP provider, these say where its token is and which API it
	// calls.
	TokenFile string `toml:"token-file,omitempty"`
	TokenEnv  string `toml:"token-env,omitempty"` // default DIGITALOCEAN_TOKEN
	APIURL    string `toml:"api-url,omitempty"`
	// Droplets maps node names to droplet ids (pcmk_host_map); a node not
	// listed is looked up by droplet name, which must be the node's name.
	Droplets map[string]int `toml:"droplets,omitempty"`
}

// Fencing agents with a meaning of their own.
const (
	FenceNone  = "none"
	FenceDummy = "fence_dummy"
	// FenceDigitalOcean is debship's own agent (agent = "digitalocean").
	FenceDigitalOcean = "fence_digitalocean"
)

// Hardening selects what the harden phase does; everything is on by default.
type Hardening struct {
	Firewall           *bool `toml:"firewall,omitempty"`            // ufw
	Fail2ban           *bool `toml:"fail2ban,omitempty"`            // sshd jail
	SSHD               *bool `toml:"sshd,omitempty"`                // sshd drop-in
	Rkhunter           *bool `toml:"rkhunter,omitempty"`            // daily check, weekly update
	UnattendedUpgrades *bool `toml:"unattended-upgrades,omitempty"` // security updates (base phase)
	// PermitRootLogin is sshd's value: "no" (default) or "prohibit-password".
	PermitRootLogin string `toml:"permit-root-login,omitempty"`
	// AllowUsers may log in by SSH besides the users debship logs in as.
	AllowUsers []string `toml:"allow-users,omitempty"`
	// TrustedSources (addresses or CIDRs) reach SSH without the rate limit
	// and are never banned by fail2ban: the operator's and CI's addresses.
	TrustedSources []string `toml:"trusted-sources,omitempty"`
	// OpenTCP are public TCP ports besides the app's (e.g. 80, 443).
	OpenTCP []int `toml:"open-tcp,omitempty"`
}

// DigitalOcean is the reserved-IP agent's configuration. The API token is
// never in the inventory: it is read from a file or an environment variable
// on the machine that runs debship, and stored on the nodes readable by
// root only.
type DigitalOcean struct {
	TokenFile string `toml:"token-file,omitempty"`
	TokenEnv  string `toml:"token-env,omitempty"` // default DIGITALOCEAN_TOKEN
	// APIURL is the API's base URL (default https://api.digitalocean.com).
	APIURL string `toml:"api-url,omitempty"`
}

// DefaultDOAPI is DigitalOcean's API.
const DefaultDOAPI = "https://api.digitalocean.com"

// DOConfig is the DigitalOcean API configuration the nodes' agents use,
// and the inventory section it comes from: [floating-ip.digitalocean]
// with provider "digitalocean", else [fencing] with agent "digitalocean";
// nil when neither uses DigitalOcean.
func (inv *Inventory) DOConfig() (*DigitalOcean, string) {
	if inv.FloatingIP.Provider == ProviderDigitalOcean {
		if d := inv.FloatingIP.DigitalOcean; d != nil {
			return d, "floating-ip.digitalocean"
		}
		return &DigitalOcean{}, "floating-ip.digitalocean"
	}
	if inv.FenceAgent() == FenceDigitalOcean {
		f := inv.Fencing
		return &DigitalOcean{TokenFile: f.TokenFile, TokenEnv: f.TokenEnv, APIURL: f.APIURL}, "fencing"
	}
	return nil, ""
}

// DOAPI is the API's base URL the nodes' agents call.
func (inv *Inventory) DOAPI() string {
	if d, _ := inv.DOConfig(); d != nil && d.APIURL != "" {
		return d.APIURL
	}
	return DefaultDOAPI
}

// checkAPIURL: the token travels in every request, so only the lab's fake
// API may be reached over plain http.
func (inv *Inventory) checkAPIURL(key, section, u string, add func(key, format string, args ...any)) {
	if err := grammar.HTTPURL(u); err != nil {
		add(key, "%s api-url %q %v; write e.g. api-url = \"https://api.digitalocean.com\", or remove the key", section, u, err)
	} else if !strings.HasPrefix(u, "https://") && !inv.Lab {
		add(key, "%s api-url %q is not https, so the API token would cross the network in clear; write api-url = \"https://…\" (plain http is for the lab's fake API only)", section, u)
	}
}

func on(b *bool) bool { return b == nil || *b }

// HAOptions returns [ha] with defaults filled in.
func (inv *Inventory) HAOptions() HA {
	var h HA
	if inv.HA != nil {
		h = *inv.HA
	}
	if h.Token == 0 {
		h.Token = 1000
	}
	if h.DCDeadtime == "" {
		h.DCDeadtime = "2s"
	}
	if h.Stickiness == nil {
		v := 100
		h.Stickiness = &v
	}
	if h.QuorumAlgorithm == "" {
		h.QuorumAlgorithm = "ffsplit"
	}
	return h
}

// FenceAgent returns the fence agent, FenceNone when there is none.
func (inv *Inventory) FenceAgent() string {
	if inv.Fencing == nil || inv.Fencing.Agent == "" {
		return FenceNone
	}
	if inv.Fencing.Agent == "digitalocean" {
		return FenceDigitalOcean
	}
	return inv.Fencing.Agent
}

// HardeningOptions returns [hardening] with defaults filled in.
func (inv *Inventory) HardeningOptions() Hardening {
	var h Hardening
	if inv.Hardening != nil {
		h = *inv.Hardening
	}
	t := true
	for _, p := range []**bool{&h.Firewall, &h.Fail2ban, &h.SSHD, &h.Rkhunter, &h.UnattendedUpgrades} {
		if *p == nil {
			*p = &t
		}
	}
	if h.PermitRootLogin == "" {
		h.PermitRootLogin = "no"
	}
	return h
}

// Enabled reports an on/off hardening option with its default.
func Enabled(b *bool) bool { return on(b) }

// AppUnit is the systemd unit of the app.
func (inv *Inventory) AppUnit() string {
	if inv.App.Unit != "" {
		return inv.App.Unit
	}
	return inv.App.Package + ".service"
}

// AppUser is the app's system user: [app] user, default the package name
// (debbuild's default for a package with a service).
func (inv *Inventory) AppUser() string {
	if inv.App.User != "" {
		return inv.App.User
	}
	return inv.App.Package
}

// SharedDir is the app's own directory on the shared file system,
// <mount>/<package>; "" without [storage].
func (inv *Inventory) SharedDir() string {
	if inv.Storage == nil {
		return ""
	}
	return strings.TrimSuffix(inv.Storage.Mount, "/") + "/" + inv.App.Package
}

// PingTimeout is the gluster volume's network.ping-timeout.
func (s *Storage) PingTimeoutSeconds() int {
	if s.PingTimeout == 0 {
		return 10
	}
	return s.PingTimeout
}

// TunnelSubnet is the private network's subnet (wireguard, tinc).
func (inv *Inventory) TunnelSubnet() netip.Prefix {
	s := inv.Network.Subnet
	if s == "" {
		s = "10.8.0.0/24"
	}
	p, _ := netip.ParsePrefix(s)
	return p.Masked()
}

// TunnelPort is the private network's port.
func (inv *Inventory) TunnelPort() int {
	if inv.Network.Port != 0 {
		return inv.Network.Port
	}
	if inv.Network.Type == NetworkTinc {
		return 655
	}
	return 51820
}

// TunnelAddress is a node's address inside the tunnel: host i+1 of the
// subnet for the i-th node of the file.
func (inv *Inventory) TunnelAddress(n Node) netip.Addr {
	a := inv.TunnelSubnet().Addr()
	for i, m := range inv.Nodes {
		if m.Name == n.Name {
			for j := 0; j <= i; j++ {
				a = a.Next()
			}
			return a
		}
	}
	return netip.Addr{}
}

// ClusterAddr is where corosync, gluster and the peers' firewall rules
// reach a node: its tunnel address with a tunnel, else its private address.
func (inv *Inventory) ClusterAddr(n Node) string {
	if inv.Network.Type == NetworkWireGuard || inv.Network.Type == NetworkTinc {
		return inv.TunnelAddress(n).String()
	}
	return n.PrivateAddr()
}

// UnderlayAddr is where a node's tunnel endpoint listens: its private
// address if it has one, else its public address.
func (n Node) UnderlayAddr() string { return n.PrivateAddr() }

// Member returns the first node that runs the app; cluster-wide steps run
// there.
func (inv *Inventory) Primary() Node { return inv.Members()[0] }

// Node returns the named node.
func (inv *Inventory) Node(name string) (Node, bool) {
	for _, n := range inv.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

var (
	durationRE  = regexp.MustCompile(`^[0-9]+(ms|s|min)?$`)
	agentNameRE = regexp.MustCompile(`^fence_[a-z0-9_]+$`)
	// Stonith option names as fence agents and pacemaker spell them
	// (ip, username, password_script, pcmk_host_list …).
	optionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

func (inv *Inventory) validateOptions(add func(key, format string, args ...any), rule func(key, what, value string, err error, fix string)) {
	h := inv.HAOptions()
	if h.Token < 200 || h.Token > 30000 {
		add("ha.token", "ha token %d ms is out of range (200-30000; default 1000)", h.Token)
	}
	if !durationRE.MatchString(h.DCDeadtime) {
		add("ha.dc-deadtime", "ha dc-deadtime %q is not a pacemaker duration such as \"2s\"", h.DCDeadtime)
	}
	if *h.Stickiness < 0 {
		add("ha.stickiness", "ha stickiness %d must not be negative", *h.Stickiness)
	}
	if h.QuorumAlgorithm != "ffsplit" && h.QuorumAlgorithm != "lms" {
		add("ha.quorum-algorithm", "ha quorum-algorithm %q: use \"ffsplit\" or \"lms\"", h.QuorumAlgorithm)
	}

	inv.validateFencing(add)

	hd := inv.HardeningOptions()
	switch hd.PermitRootLogin {
	case "no", "prohibit-password":
	default:
		add("hardening.permit-root-login", "hardening permit-root-login %q: use \"no\" or \"prohibit-password\"", hd.PermitRootLogin)
	}
	if on(hd.SSHD) && hd.PermitRootLogin == "no" {
		for i, n := range inv.Nodes {
			if inv.SSHFor(n).User == "root" {
				key := "ssh.user"
				if n.User != "" {
					key = fmt.Sprintf("node.%d.user", i)
				}
				add(key, "node %q is reached as root, but the sshd hardening forbids root logins (debship would lock itself out); "+
					"log in as a user with passwordless sudo ([ssh] user), or set permit-root-login = \"prohibit-password\" in [hardening]", n.Name)
				break
			}
		}
	}
	for _, u := range hd.AllowUsers {
		rule("hardening.allow-users", "[hardening] allow-users:", u, grammar.User(u), "write the login names of the users, e.g. allow-users = [\"alice\"]")
	}
	for _, s := range hd.TrustedSources {
		rule("hardening.trusted-sources", "[hardening] trusted-sources:", s, grammar.AddrOrPrefix(s), "write addresses or networks, e.g. trusted-sources = [\"192.0.2.10\"]")
	}
	for _, p := range hd.OpenTCP {
		if p < 1 || p > 65535 {
			add("hardening.open-tcp", "hardening open-tcp: %d is not a TCP port", p)
		}
	}

	if s := inv.Storage; s != nil {
		if _, ok := inv.Tiebreaker(); !ok && !s.AcceptSplitBrainRisk && len(inv.Members()) == 2 {
			add("storage", "[storage] without a tie-breaker would be a GlusterFS replica 2 volume: when the two nodes lose "+
				"sight of each other, both keep accepting writes and the same file can change differently on each "+
				"(split-brain), which gluster cannot merge. Add a third small node with role = \"tiebreaker\" "+
				"(it holds the arbiter brick: replica 3 arbiter 1), or set accept-split-brain-risk = true in [storage]")
		}
		if s.PingTimeout < 0 || s.PingTimeout > 300 {
			add("storage.ping-timeout", "storage ping-timeout %d s is out of range (1-300; default 10)", s.PingTimeout)
		}
		if s.Mount != "" && s.Mount == s.Brick {
			add("storage.mount", "storage mount and brick are both %s; the brick is gluster's own directory, mount the volume elsewhere", s.Mount)
		}
	}

	switch inv.Network.Type {
	case NetworkWireGuard, NetworkTinc:
		p, err := netip.ParsePrefix(orDefault(inv.Network.Subnet, "10.8.0.0/24"))
		if err != nil || !p.Addr().Is4() || p.Bits() > 29 {
			add("network.subnet", "network subnet %q is not an IPv4 subnet such as \"10.8.0.0/24\"", inv.Network.Subnet)
		} else {
			if len(inv.Nodes)+2 > 1<<(32-p.Bits()) {
				add("network.subnet", "network subnet %s is too small for %d nodes", p, len(inv.Nodes))
			}
			if f := inv.FloatingPrefix(); f.IsValid() && p.Overlaps(f) && inv.FloatingIP.Provider == ProviderIPaddr2 {
				add("network.subnet", "network subnet %s overlaps the floating IP %s; pick a tunnel subnet of its own", p, f)
			}
			for _, n := range inv.Nodes {
				if a, err := netip.ParseAddr(n.Address); err == nil && p.Contains(a) {
					add("network.subnet", "network subnet %s contains node %q's address %s; pick a tunnel subnet of its own", p, n.Name, a)
				}
			}
		}
	}
	if inv.Network.Port < 0 || inv.Network.Port > 65535 {
		add("network.port", "network port %d is not a port (1-65535)", inv.Network.Port)
	}

	if inv.FloatingIP.Provider == ProviderDigitalOcean {
		d := inv.FloatingIP.DigitalOcean
		if d == nil || (d.TokenFile == "" && d.TokenEnv == "") {
			add("floating-ip", "the digitalocean provider needs an API token: set token-file (a file readable by you) or "+
				"token-env (an environment variable, default DIGITALOCEAN_TOKEN) in [floating-ip.digitalocean]; never the token itself")
		}
		if d != nil && d.APIURL != "" {
			inv.checkAPIURL("floating-ip.digitalocean.api-url", "[floating-ip.digitalocean]", d.APIURL, add)
		}
		if d != nil && d.TokenEnv != "" {
			rule("floating-ip.digitalocean.token-env", "[floating-ip.digitalocean] token-env", d.TokenEnv, grammar.EnvName(d.TokenEnv), "write the variable's name, e.g. token-env = \"DIGITALOCEAN_TOKEN\"")
		}
	} else if inv.FloatingIP.DigitalOcean != nil {
		add("floating-ip.digitalocean", "[floating-ip.digitalocean] is set but provider is %q; set provider = \"digitalocean\" or remove it", inv.FloatingIP.Provider)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkFloatingSubnet: IPaddr2 moves an address within one L2 network, so
// every node that runs the app needs an address in the floating IP's subnet.
func (inv *Inventory) checkFloatingSubnet(p netip.Prefix, add func(key, format string, args ...any)) {
	if inv.FloatingIP.Provider != ProviderIPaddr2 {
		return
	}
	subnet := p.Masked()
	var outside []string
	for _, n := range inv.Members() {
		known, in := false, false
		for _, s := range []string{n.Address, n.PrivateAddress} {
			if a, err := netip.ParseAddr(s); err == nil {
				known = true
				in = in || subnet.Contains(a)
			}
		}
		if known && !in {
			outside = append(outside, n.Name)
		}
	}
	if len(outside) > 0 {
		add("floating-ip.address", "floating IP %s is outside the subnet %s of node %s: IPaddr2 can only move an address "+
			"between nodes on one network; use an address of the nodes' subnet (with its prefix length), or provider = \"digitalocean\" for a reserved IP",
			p, subnet, strings.Join(outside, ", "))
	}
}

// RequireFencing is plan's and apply's refusal of a cluster without
// fencing, unless [fencing] accepts the risk: Pacemaker does not support
// such a cluster, and a hung node there keeps its resources.
func (inv *Inventory) RequireFencing() error {
	if inv.FenceAgent() != FenceNone || (inv.Fencing != nil && inv.Fencing.AcceptNoFencing) {
		return nil
	}
	return inv.errorAt("fencing.agent", "the cluster has no fence agent, so a node that hangs instead of dying keeps "+
		"the app, and on two nodes a network partition leaves both holding the floating IP (Pacemaker calls a "+
		"cluster without fencing unsupported); set agent in [fencing] to your hosting's fence agent "+
		"(fence_ipmilan, fence_virsh, fence_aws, … see \"pcs stonith list\") with its options and password-file, "+
		"or set accept-no-fencing = true in [fencing] to accept the risk")
}

// Warnings are what an operator must know about an inventory before
// applying it: no fencing (accepted), the lab's fake fencing, replica 2.
func (inv *Inventory) Warnings() []string {
	var w []string
	if inv.FenceAgent() == FenceNone && inv.Fencing != nil && inv.Fencing.AcceptNoFencing {
		w = append(w, "NO FENCING (accept-no-fencing = true): stonith is disabled. If a node hangs instead of "+
			"dying, both nodes may run the app and hold the floating IP at once. Configure the fence agent of your "+
			"hosting in [fencing] before production use.")
	}
	if inv.FenceAgent() == FenceDummy {
		w = append(w, "fencing is fence_dummy: it pretends to fence and is for the lab only")
	}
	if s := inv.Storage; s != nil && s.AcceptSplitBrainRisk {
		if _, ok := inv.Tiebreaker(); !ok {
			w = append(w, "storage is GlusterFS replica 2 (accept-split-brain-risk = true): a network split can leave files that differ on the two nodes")
		}
	}
	return w
}
