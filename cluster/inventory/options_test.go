package inventory

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// twoNodes is a valid 2-node inventory; the cases below append to it or
// replace parts of it. Lines: [storage] is line 20.
const twoNodes = `name = "prod"
[ssh]
user = "admin"
[[node]]
name = "web1"
address = "203.0.113.11"
private-address = "10.10.0.11"
[[node]]
name = "web2"
address = "203.0.113.12"
private-address = "10.10.0.12"
[floating-ip]
address = "10.10.0.100/24"
[app]
package = "hello-web"
port = 8080
[fencing]
agent = "fence_ipmilan"
options = { ip = "10.0.0.1", username = "fence" }
[storage]
volume = "shared"
mount = "/srv/shared"
brick = "/bricks/shared"
accept-split-brain-risk = true
`

func TestInventoryOptions(t *testing.T) {
	inv, err := Load(writeInventory(t, twoNodes))
	if err != nil {
		t.Fatal(err)
	}
	if h := inv.HAOptions(); h.Token != 1000 || h.DCDeadtime != "2s" || *h.Stickiness != 100 || h.QuorumAlgorithm != "ffsplit" {
		t.Errorf("ha defaults: %+v", h)
	}
	hd := inv.HardeningOptions()
	if !Enabled(hd.Firewall) || !Enabled(hd.SSHD) || hd.PermitRootLogin != "no" {
		t.Errorf("hardening defaults: %+v", hd)
	}
	if inv.FenceAgent() != "fence_ipmilan" || inv.Fencing.Options["username"] != "fence" {
		t.Errorf("fencing: %+v", inv.Fencing)
	}
	web1, _ := inv.Node("web1")
	web2, _ := inv.Node("web2")
	if inv.Network.Type != NetworkWireGuard || inv.ClusterAddr(web1) != "10.8.0.1" || inv.ClusterAddr(web2) != "10.8.0.2" || inv.TunnelPort() != 51820 {
		t.Errorf("tunnel: %s %s %d", inv.ClusterAddr(web1), inv.ClusterAddr(web2), inv.TunnelPort())
	}
	if inv.AppUnit() != "hello-web.service" || inv.Storage.PingTimeoutSeconds() != 10 {
		t.Errorf("app unit %s, ping-timeout %d", inv.AppUnit(), inv.Storage.PingTimeoutSeconds())
	}
	// Writing keeps the new tables.
	out := filepath.Join(t.TempDir(), "c.toml")
	if err := inv.Write(out); err != nil {
		t.Fatal(err)
	}
	back, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	back.Path, back.lines, inv.Path, inv.lines = "", nil, "", nil
	if !reflect.DeepEqual(back, inv) {
		t.Errorf("round trip:\n%+v\n%+v", back, inv)
	}
}

func TestDOToken(t *testing.T) {
	doc := strings.Replace(twoNodes, "address = \"10.10.0.100/24\"\n",
		"address = \"198.51.100.7/32\"\nprovider = \"digitalocean\"\n[floating-ip.digitalocean]\ntoken-env = \"MY_DO_TOKEN\"\n", 1)
	t.Setenv("MY_DO_TOKEN", " secret \n")
	inv, err := Load(writeInventory(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := inv.DOToken(); err != nil || tok != "secret" {
		t.Fatalf("token %q, %v", tok, err)
	}
	t.Setenv("MY_DO_TOKEN", "")
	if _, err := inv.DOToken(); err == nil || !strings.Contains(err.Error(), "$MY_DO_TOKEN is not set") {
		t.Fatalf("got %v", err)
	}
}

func TestInventoryOptionErrors(t *testing.T) {
	rep := func(old, new string) func() string {
		return func() string {
			if !strings.Contains(twoNodes, old) {
				t.Fatalf("%q not in the inventory", old)
			}
			return strings.Replace(twoNodes, old, new, 1)
		}
	}
	tests := []struct {
		name string
		doc  func() string
		want []string
	}{
		{"replica 2 without the acknowledgement", rep("accept-split-brain-risk = true\n", ""),
			[]string{`20: [storage] without a tie-breaker would be a GlusterFS replica 2 volume: when the two nodes lose sight of each other, both keep accepting writes and the same file can change differently on each (split-brain), which gluster cannot merge. Add a third small node with role = "tiebreaker" (it holds the arbiter brick: replica 3 arbiter 1), or set accept-split-brain-risk = true in [storage]`}},
		{"floating ip outside the nodes' subnet", rep(`"10.10.0.100/24"`, `"10.20.0.100/24"`),
			[]string{`13: floating IP 10.20.0.100/24 is outside the subnet 10.20.0.0/24 of node web1, web2: IPaddr2 can only move an address between nodes on one network; use an address of the nodes' subnet (with its prefix length), or provider = "digitalocean" for a reserved IP`}},
		{"floating ip outside one node's subnet", rep(`private-address = "10.10.0.12"`, `private-address = "10.11.0.12"`),
			[]string{`13: floating IP 10.10.0.100/24 is outside the subnet 10.10.0.0/24 of node web2: IPaddr2 can only move an address between nodes on one network; use an address of the nodes' subnet (with its prefix length), or provider = "digitalocean" for a reserved IP`}},
		{"duplicate node", rep("name = \"web2\"", "name = \"web1\""),
			[]string{`9: duplicate node name "web1" (first at line 5)`}},
		{"root login with root user", rep("user = \"admin\"", "user = \"root\""),
			[]string{`3: node "web1" is reached as root, but the sshd hardening forbids root logins (debship would lock itself out); log in as a user with passwordless sudo ([ssh] user), or set permit-root-login = "prohibit-password" in [hardening]`}},
		{"fence_dummy outside the lab", rep(`agent = "fence_ipmilan"`, `agent = "fence_dummy"`),
			[]string{`18: fencing agent fence_dummy fences nothing and is for the lab only (lab = true); use the fence agent of your hosting (fence_ipmilan, fence_virsh, fence_aws, …)`}},
		{"bad fence agent", rep(`agent = "fence_ipmilan"`, `agent = "ipmi"`),
			[]string{`18: fencing agent "ipmi" is not a fence agent name such as "fence_ipmilan"`}},
		{"inline fence password", rep(`username = "fence" }`, `username = "fence", password = "hunter2" }`),
			[]string{`19: fencing option password holds a secret, which must not be in the inventory (it would end up in version control, the CIB and the nodes' process list); give the agent's password with password-file (a file only you can read) or password-env in [fencing], and other credentials by the agent's own credentials file on the nodes`}},
		{"inline API token as a table", rep(`options = { ip = "10.0.0.1", username = "fence" }`, "[fencing.options]\nip = \"10.0.0.1\"\napi_token = \"abc\"\nSNMP-Priv-Passwd = \"x\""),
			[]string{
				`22: fencing option SNMP-Priv-Passwd holds a secret, which must not be in the inventory (it would end up in version control, the CIB and the nodes' process list); give the agent's password with password-file (a file only you can read) or password-env in [fencing], and other credentials by the agent's own credentials file on the nodes`,
				`21: fencing option api_token holds a secret, which must not be in the inventory (it would end up in version control, the CIB and the nodes' process list); give the agent's password with password-file (a file only you can read) or password-env in [fencing], and other credentials by the agent's own credentials file on the nodes`,
			}},
		{"own password_script", rep(`username = "fence" }`, `username = "fence", password_script = "cat /root/pw" }`),
			[]string{`19: fencing option password_script is a command the nodes' shell would run; debship sets it itself when [fencing] has password-file (a file only you can read) or password-env`}},
		{"password in [fencing]", rep(`agent = "fence_ipmilan"`, "agent = \"fence_ipmilan\"\npassword = \"hunter2\""),
			[]string{`19: the fence password must not be in the inventory (it would end up in version control and the CIB); put it in a file only you can read and set password-file, or export it and set password-env`}},
		{"password file and env", rep(`agent = "fence_ipmilan"`, "agent = \"fence_ipmilan\"\npassword-file = \"pw\"\npassword-env = \"PW\""),
			[]string{`20: [fencing] has both password-file and password-env; keep one`}},
		{"password without agent", rep(`agent = "fence_ipmilan"`, "password-env = \"PW\""),
			[]string{`17: [fencing] has a password but no agent; set agent, or remove password-file and password-env`}},
		{"password env name", rep(`agent = "fence_ipmilan"`, "agent = \"fence_ipmilan\"\npassword-env = \"$PW\""),
			[]string{`19: password-env "$PW" is not an environment variable name`}},
		{"accept no fencing with an agent", rep(`agent = "fence_ipmilan"`, "agent = \"fence_ipmilan\"\naccept-no-fencing = true"),
			[]string{`19: accept-no-fencing = true is for a cluster without a fence agent, but agent is "fence_ipmilan"; remove one of the two from [fencing]`}},
		{"inline DO token", rep("address = \"10.10.0.100/24\"\n", "address = \"198.51.100.7/32\"\nprovider = \"digitalocean\"\n[floating-ip.digitalocean]\ntoken = \"dop_v1_abc\"\n"),
			[]string{`16: the DigitalOcean token must not be in the inventory (it would end up in version control); put it in a file and set token-file, or export it and set token-env`}},
		{"DO without token source", rep("address = \"10.10.0.100/24\"\n", "address = \"198.51.100.7/32\"\nprovider = \"digitalocean\"\n"),
			[]string{`12: the digitalocean provider needs an API token: set token-file (a file readable by you) or token-env (an environment variable, default DIGITALOCEAN_TOKEN) in [floating-ip.digitalocean]; never the token itself`}},
		{"http api-url outside the lab", rep("address = \"10.10.0.100/24\"\n", "address = \"198.51.100.7/32\"\nprovider = \"digitalocean\"\n[floating-ip.digitalocean]\ntoken-env = \"T\"\napi-url = \"http://10.0.0.5:8443\"\n"),
			[]string{`17: [floating-ip.digitalocean] api-url "http://10.0.0.5:8443" is not https, so the API token would cross the network in clear; write api-url = "https://…" (plain http is for the lab's fake API only)`}},
		{"DO fencing with a second token", func() string {
			return strings.NewReplacer("address = \"10.10.0.100/24\"\n", "address = \"198.51.100.7/32\"\nprovider = \"digitalocean\"\n[floating-ip.digitalocean]\ntoken-env = \"T\"\n",
				`agent = "fence_ipmilan"`, "agent = \"digitalocean\"\ntoken-env = \"T2\"").Replace(twoNodes)
		}, []string{`20: [fencing] with agent = "digitalocean" uses the token and api-url of [floating-ip.digitalocean]; remove token-file, token-env and api-url from [fencing]`}},
		{"DO fencing without a token", rep(`agent = "fence_ipmilan"`, `agent = "digitalocean"`),
			[]string{`18: agent = "digitalocean" needs an API token: set token-file (a file readable by you) or token-env (an environment variable, default DIGITALOCEAN_TOKEN) in [fencing]; never the token itself`}},
		{"DO fencing: http, a password, droplets of no node", rep(`agent = "fence_ipmilan"`, "agent = \"digitalocean\"\ntoken-env = \"T\"\napi-url = \"http://10.0.0.5\"\npassword-env = \"PW\"\ndroplets = { web1 = 11, web2 = 0, web3 = 13 }"),
			[]string{
				`17: fence_digitalocean logs in with the DigitalOcean API token, not a password; remove password-file and password-env from [fencing]`,
				`20: [fencing] api-url "http://10.0.0.5" is not https, so the API token would cross the network in clear; write api-url = "https://…" (plain http is for the lab's fake API only)`,
				`22: [fencing] droplets: 0 is not a droplet id (the number in the droplet's URL in the control panel)`,
				`22: [fencing] droplets: "web3" is not a node that runs the app; write droplets = { <node name> = <droplet id>, … }`,
			}},
		{"DO keys with another agent", rep(`agent = "fence_ipmilan"`, "agent = \"fence_ipmilan\"\ntoken-file = \"tok\""),
			[]string{`19: [fencing] token-file is for agent = "digitalocean", but agent is "fence_ipmilan"; remove token-file`}},
		{"inline fencing token", rep(`agent = "fence_ipmilan"`, "agent = \"digitalocean\"\ntoken = \"dop_v1_abc\""),
			[]string{`19: the DigitalOcean token must not be in the inventory (it would end up in version control); put it in a file and set token-file, or export it and set token-env`}},
		{"bad ha", func() string { return twoNodes + "[ha]\ntoken = 50\ndc-deadtime = \"soon\"\n" },
			[]string{`26: ha token 50 ms is out of range (200-30000; default 1000)`, `27: ha dc-deadtime "soon" is not a pacemaker duration such as "2s"`}},
		{"tunnel subnet overlaps", func() string { return twoNodes + "[network]\nsubnet = \"10.10.0.0/16\"\n" },
			[]string{`26: network subnet 10.10.0.0/16 overlaps the floating IP 10.10.0.100/24; pick a tunnel subnet of its own`}},
		{"hardening values", func() string {
			return twoNodes + "[hardening]\npermit-root-login = \"yes\"\ntrusted-sources = [\"10.0.0.0/33\"]\nopen-tcp = [0]\n"
		}, []string{
			`26: hardening permit-root-login "yes": use "no" or "prohibit-password"`,
			`27: [hardening] trusted-sources: "10.0.0.0/33" is not an IP address or a network such as 192.0.2.10 or 192.0.2.0/24; write addresses or networks, e.g. trusted-sources = ["192.0.2.10"]`,
			`28: hardening open-tcp: 0 is not a TCP port`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantLoadErrors(t, tt.doc(), tt.want) })
	}
}

// TestDOFencingOwnToken: with IPaddr2 for the floating IP, fence_digitalocean
// takes its token and API from [fencing]; plain http is the lab's alone.
func TestDOFencingOwnToken(t *testing.T) {
	doc := "lab = true\n" + strings.Replace(twoNodes, `agent = "fence_ipmilan"`,
		"agent = \"digitalocean\"\ntoken-env = \"FENCE_DO\"\napi-url = \"http://10.231.0.1:8443\"\ndroplets = { web1 = 11, web2 = 12 }", 1)
	t.Setenv("FENCE_DO", "dop_v1_fence")
	inv, err := Load(writeInventory(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := inv.DOToken(); err != nil || tok != "dop_v1_fence" || inv.DOAPI() != "http://10.231.0.1:8443" || inv.FenceAgent() != FenceDigitalOcean {
		t.Fatalf("token %q (%v), api %s, agent %s", tok, err, inv.DOAPI(), inv.FenceAgent())
	}
}
