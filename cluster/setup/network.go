package setup

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
)

func networkPhase(inv *inventory.Inventory) Phase {
	switch inv.Network.Type {
	case inventory.NetworkWireGuard:
		return wireguardPhase(inv)
	case inventory.NetworkTinc:
		return tincPhase(inv)
	}
	return Phase{Name: PhaseNetwork}
}

// tunnelUnit is the unit that brings the private network up.
func tunnelUnit(inv *inventory.Inventory) string {
	switch inv.Network.Type {
	case inventory.NetworkWireGuard:
		return "wg-quick@wg0.service"
	case inventory.NetworkTinc:
		return "tinc@debship.service"
	}
	return ""
}

// afterNetworkSteps order corosync and glusterd after the tunnel.
func afterNetworkSteps(inv *inventory.Inventory, units ...string) []Step {
	net := tunnelUnit(inv)
	if net == "" {
		return nil
	}
	var steps []Step
	for _, u := range units {
		path := "/etc/systemd/system/" + u + ".d/debship-network.conf"
		steps = append(steps, fileStep(strings.TrimSuffix(u, ".service")+" after the private network", path, 0o644,
			templateFile("after-network.conf", func(*Target) any { return map[string]string{"Unit": u, "Network": net} }),
			func(ctx context.Context, t *Target) error { return host.DaemonReload(ctx, t.T) }))
	}
	return steps
}

// tunnelUpStage ends the network phase: it checks that every peer answers
// a ping over the tunnel, so that a tunnel that does not come up fails
// here, with the tunnel's log, and not later as a cluster that does not
// form. nudge, run first, makes the tunnel daemon try its peers again at
// once.
func tunnelUpStage(inv *inventory.Inventory, nudge string) Stage {
	ping := packagesStep("ping", func(*Target) []string { return []string{"iputils-ping"} })
	return Stage{Nodes: inv.Nodes, Steps: []Step{ping, tunnelUpStep(nudge)}}
}

func tunnelUpStep(nudge string) Step {
	peers := func(t *Target) string {
		inv := t.Inv()
		var a []string
		for _, p := range others(inv.Nodes, t.Node) {
			a = append(a, inv.TunnelAddress(p).String()) // an address: no quoting needed
		}
		return strings.Join(a, " ")
	}
	// down prints the peers that do not answer a ping over the tunnel.
	down := func(t *Target) string {
		return "d=; for a in " + peers(t) + "; do ping -c 1 -W 1 -q $a >/dev/null 2>&1 || d=\"$d $a\"; done; echo $d"
	}
	return Step{
		Name: "tunnel to the other nodes",
		Hint: "the tunnel daemons reach each other on the nodes' own addresses and the tunnel's port (UDP, and TCP for tinc); see journalctl -u wg-quick@wg0 or -u tinc@debship",
		Check: func(ctx context.Context, t *Target) (State, error) {
			d, err := t.Sh(ctx, down(t))
			if err != nil || d == "" {
				return Done(), err
			}
			return Todo("no answer over the tunnel from %s", d), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			if nudge != "" {
				if _, err := t.Sh(ctx, nudge); err != nil {
					return err
				}
			}
			d, err := t.Sh(ctx, "for i in $(seq 60); do d=$("+down(t)+"); [ -z \"$d\" ] && break; sleep 1; done; echo $d")
			if err != nil || d == "" {
				return err
			}
			log, _ := t.Sh(ctx, "journalctl -b --no-pager -q -n 15 -u "+tunnelUnit(t.Inv())+" 2>&1 || true")
			return fmt.Errorf("no answer over the tunnel from %s after 60 s; the tunnel's log:\n%s", d, log)
		},
	}
}

const wgKey = "/etc/wireguard/private.key"

// wireguardPackages adds wireguard-go where the kernel cannot make a
// WireGuard interface (a container, a kernel without the module): wg-quick
// falls back to it by itself.
func wireguardPackages(ctx context.Context, t *Target) ([]string, error) {
	out, err := t.Sh(ctx, "if test -d /sys/module/wireguard || modprobe --dry-run --quiet wireguard 2>/dev/null; then echo kernel; else echo userspace; fi")
	if err != nil {
		return nil, fmt.Errorf("wireguard kernel module: %w", err)
	}
	if out == "userspace" {
		return []string{"wireguard-tools", "wireguard-go"}, nil
	}
	return []string{"wireguard-tools"}, nil
}

func wireguardPhase(inv *inventory.Inventory) Phase {
	keyStep := shStep("wireguard key", "",
		"test -s "+wgKey+" && echo ok || echo 'generate the private key on the node'",
		"umask 077; mkdir -p /etc/wireguard && wg genkey > "+wgKey+".tmp && mv "+wgKey+".tmp "+wgKey)
	conf := func(ctx context.Context, t *Target) ([]byte, error) {
		inv := t.Inv()
		type peer struct{ Name, PublicKey, Tunnel, Endpoint string }
		var peers []peer
		for _, p := range others(inv.Nodes, t.Node) {
			pub, err := t.Peer(p.Name).Sh(ctx, "test -s "+wgKey+" && wg pubkey < "+wgKey+" || true")
			if err != nil {
				return nil, err
			}
			if pub == "" {
				return nil, nil // not generated yet (plan on fresh nodes)
			}
			peers = append(peers, peer{p.Name, pub, inv.TunnelAddress(p).String(),
				net.JoinHostPort(p.UnderlayAddr(), strconv.Itoa(inv.TunnelPort()))})
		}
		addr := fmt.Sprintf("%s/%d", inv.TunnelAddress(t.Node), inv.TunnelSubnet().Bits())
		return render("wg0.conf", map[string]any{"Node": t.Node.Name, "Address": addr, "Port": inv.TunnelPort(), "Peers": peers})
	}
	confStep := Step{
		Name: "wireguard wg0",
		File: &FileSpec{Path: "/etc/wireguard/wg0.conf", Content: conf},
		Hint: "wg-quick needs the wireguard kernel module or, without it, wireguard-go and /dev/net/tun; see journalctl -u wg-quick@wg0",
		Check: func(ctx context.Context, t *Target) (State, error) {
			b, err := conf(ctx, t)
			if err != nil {
				return State{}, err
			}
			if b == nil {
				return Todo("write /etc/wireguard/wg0.conf (after all keys exist)"), nil
			}
			st, err := fileState(ctx, t, "/etc/wireguard/wg0.conf", b, 0o600)
			if err != nil || !st.Done {
				return st, err
			}
			return unitState(ctx, t, "wg-quick@wg0.service")
		},
		Apply: func(ctx context.Context, t *Target) error {
			b, err := conf(ctx, t)
			if err != nil {
				return err
			}
			if b == nil {
				return fmt.Errorf("a peer has no wireguard key")
			}
			if err := t.T.Upload(ctx, "/etc/wireguard/wg0.conf", b, 0o600); err != nil {
				return err
			}
			return host.EnableRestart(ctx, t.T, "wg-quick@wg0")
		},
	}
	steps := append([]Step{confStep}, afterNetworkSteps(inv, "corosync.service", "glusterd.service")...)
	return Phase{Name: PhaseNetwork, Stages: []Stage{
		{Nodes: inv.Nodes, Steps: []Step{packagesStepCtx("packages", wireguardPackages), keyStep}},
		{Nodes: inv.Nodes, Steps: steps},
		tunnelUpStage(inv, ""),
	}}
}

const (
	tincDir    = "/etc/tinc/debship"
	tincDropIn = "/etc/systemd/system/tinc@debship.service.d/debship-address.conf"
)

// tincName is a node's tinc name: letters, digits and '_' only.
func tincName(n inventory.Node) string { return strings.ReplaceAll(n.Name, "-", "_") }

func tincPhase(inv *inventory.Inventory) Phase {
	keyStep := Step{
		Name: "tinc key",
		Check: func(ctx context.Context, t *Target) (State, error) {
			return shState(ctx, t, "test -s "+tincDir+"/rsa_key.priv && test -s "+tincDir+"/rsa_key.pub && echo ok || echo 'generate the RSA key on the node'")
		},
		Apply: func(ctx context.Context, t *Target) error {
			// A config dir without Name: tincd -K writes both halves there.
			_, err := t.Sh(ctx, "set -e; umask 077; mkdir -p "+tincDir+"/hosts; d=$(mktemp -d); touch $d/tinc.conf; "+
				"tincd -c $d -K4096 </dev/null >/dev/null 2>&1; mv $d/rsa_key.priv "+tincDir+"/rsa_key.priv; "+
				"chmod 644 $d/rsa_key.pub; mv $d/rsa_key.pub "+tincDir+"/rsa_key.pub; rm -rf $d")
			return err
		},
	}
	hostFiles := func(ctx context.Context, t *Target) (map[string][]byte, error) {
		inv := t.Inv()
		out := map[string][]byte{}
		for _, n := range inv.Nodes {
			pub, err := t.Peer(n.Name).Sh(ctx, "cat "+tincDir+"/rsa_key.pub 2>/dev/null || true")
			if err != nil {
				return nil, err
			}
			if pub == "" {
				return nil, nil
			}
			b, err := render("tinc-host", map[string]any{"Name": tincName(n), "Address": n.UnderlayAddr(), "Port": inv.TunnelPort(),
				"Tunnel": inv.TunnelAddress(n).String(), "PublicKey": pub})
			if err != nil {
				return nil, err
			}
			out[tincDir+"/hosts/"+tincName(n)] = b
		}
		return out, nil
	}
	files := func(ctx context.Context, t *Target) (map[string][]byte, error) {
		inv := t.Inv()
		out, err := hostFiles(ctx, t)
		if err != nil || out == nil {
			return nil, err
		}
		var connect []string
		for _, p := range others(inv.Nodes, t.Node) {
			connect = append(connect, tincName(p))
		}
		b, err := render("tinc.conf", map[string]any{"Node": t.Node.Name, "Name": tincName(t.Node), "Port": inv.TunnelPort(), "ConnectTo": connect})
		if err != nil {
			return nil, err
		}
		out[tincDir+"/tinc.conf"] = b
		addr := fmt.Sprintf("%s/%d", inv.TunnelAddress(t.Node), inv.TunnelSubnet().Bits())
		// Any peer's underlay address tells which interface, and so which
		// MTU, the tunnel's datagrams use.
		peer := others(inv.Nodes, t.Node)[0].UnderlayAddr()
		for _, s := range []string{"tinc-up", "tinc-down"} {
			if out[tincDir+"/"+s], err = render(s, map[string]any{"Address": addr, "Peer": peer}); err != nil {
				return nil, err
			}
		}
		if out[tincDropIn], err = render("tinc-address.conf", map[string]any{"Address": inv.TunnelAddress(t.Node).String()}); err != nil {
			return nil, err
		}
		return out, nil
	}
	confStep := Step{
		Name: "tinc net debship",
		Hint: "tinc needs /dev/net/tun; see journalctl -u tinc@debship",
		Check: func(ctx context.Context, t *Target) (State, error) {
			fs, err := files(ctx, t)
			if err != nil {
				return State{}, err
			}
			if fs == nil {
				return Todo("write the tinc configuration (after all keys exist)"), nil
			}
			for p, b := range fs {
				st, err := fileState(ctx, t, p, b, tincMode(p))
				if err != nil || !st.Done {
					return st, err
				}
			}
			if st, err := unitState(ctx, t, "tinc@debship.service"); err != nil || !st.Done {
				return st, err
			}
			// Debian's tinc@.service is WantedBy=tinc.service: without it
			// enabled, the net does not come up at boot.
			if on, _, err := host.UnitState(ctx, t.T, "tinc.service"); err != nil || !on {
				return Todo("enable tinc.service (it starts tinc@debship at boot)"), err
			}
			return Done(), nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			fs, err := files(ctx, t)
			if err != nil {
				return err
			}
			if fs == nil {
				return fmt.Errorf("a peer has no tinc key")
			}
			for p, b := range fs {
				if err := t.T.Upload(ctx, p, b, tincMode(p)); err != nil {
					return err
				}
			}
			if err := host.DaemonReload(ctx, t.T); err != nil {
				return err
			}
			if err := host.EnableRestart(ctx, t.T, "tinc@debship"); err != nil {
				return err
			}
			return host.EnableStart(ctx, t.T, "tinc.service")
		},
	}
	steps := append([]Step{confStep}, afterNetworkSteps(inv, "corosync.service", "glusterd.service")...)
	return Phase{Name: PhaseNetwork, Stages: []Stage{
		{Nodes: inv.Nodes, Steps: []Step{packagesStep("packages", func(*Target) []string { return []string{"tinc"} }), keyStep}},
		{Nodes: inv.Nodes, Steps: steps},
		// tincd retries a refused connection after 5, 10, 15… s: the node
		// that started first would wait for its next try. SIGALRM makes
		// tincd try at once.
		tunnelUpStage(inv, "tincd -n debship -kALRM >/dev/null 2>&1 || true"),
	}}
}

func tincMode(p string) os.FileMode {
	if strings.HasSuffix(p, "/tinc-up") || strings.HasSuffix(p, "/tinc-down") {
		return 0o755
	}
	return 0o644
}
