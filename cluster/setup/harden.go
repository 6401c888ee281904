package setup

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
)

// Ports the cluster uses between its nodes.
const (
	portCorosync = 5405 // knet, link 0
	portQnetd    = 5403
)

type ufwRule struct {
	Proto, From, Comment string
	Port                 string
}

type ufwPublic struct {
	Port    int
	Comment string
}

// ufwData is the firewall of one node.
func ufwData(inv *inventory.Inventory, n inventory.Node) map[string]any {
	h := inv.HardeningOptions()
	ssh := inv.SSHFor(n).Port
	var public []ufwPublic
	var rules []ufwRule
	member := n.Role != inventory.RoleTiebreaker
	if member {
		public = append(public, ufwPublic{inv.App.Port, "app " + inv.App.Package})
	}
	for _, p := range h.OpenTCP {
		public = append(public, ufwPublic{p, "open-tcp"})
	}
	_, hasTB := inv.Tiebreaker()
	for _, p := range others(inv.Nodes, n) {
		from := inv.ClusterAddr(p)
		pMember := p.Role != inventory.RoleTiebreaker
		switch inv.Network.Type {
		case inventory.NetworkWireGuard:
			rules = append(rules, ufwRule{"udp", p.UnderlayAddr(), "wireguard from " + p.Name, strconv.Itoa(inv.TunnelPort())})
		case inventory.NetworkTinc:
			rules = append(rules, ufwRule{"tcp", p.UnderlayAddr(), "tinc from " + p.Name, strconv.Itoa(inv.TunnelPort())},
				ufwRule{"udp", p.UnderlayAddr(), "tinc from " + p.Name, strconv.Itoa(inv.TunnelPort())})
		}
		if member && pMember {
			rules = append(rules, ufwRule{"udp", from, "corosync from " + p.Name, strconv.Itoa(portCorosync)})
		}
		if !member && pMember && hasTB {
			rules = append(rules, ufwRule{"tcp", from, "corosync-qnetd from " + p.Name, strconv.Itoa(portQnetd)})
		}
		if inv.Storage != nil {
			// Gluster 10 picks each brick's port at random between
			// glusterd.vol's base-port and max-port (49152-60999).
			rules = append(rules,
				ufwRule{"tcp", from, "glusterd from " + p.Name, "24007:24008"},
				ufwRule{"tcp", from, "gluster bricks from " + p.Name, "49152:60999"}) // Gluster 10 picks brick ports at random in glusterd.vol base-port..max-port
		}
	}
	return map[string]any{"Node": n.Name, "SSHPort": ssh, "Trusted": h.TrustedSources, "Public": public, "Peers": rules}
}

func hardenPhase(inv *inventory.Inventory) Phase {
	h := inv.HardeningOptions()
	var pkgs []string
	if inventory.Enabled(h.Firewall) {
		pkgs = append(pkgs, "ufw")
	}
	if inventory.Enabled(h.Fail2ban) {
		pkgs = append(pkgs, "fail2ban", "python3-systemd")
	}
	if inventory.Enabled(h.Rkhunter) {
		pkgs = append(pkgs, "rkhunter")
	}
	var steps []Step
	if len(pkgs) > 0 {
		steps = append(steps, packagesStep("packages", func(*Target) []string { return pkgs }))
	}
	if inventory.Enabled(h.Firewall) {
		steps = append(steps, ufwStep())
	}
	if inventory.Enabled(h.Fail2ban) {
		steps = append(steps,
			fileStep("fail2ban sshd jail", "/etc/fail2ban/jail.local", 0o644, templateFile("jail.local", func(t *Target) any {
				ignore := append([]string(nil), h.TrustedSources...)
				for _, p := range others(t.Inv().Nodes, t.Node) {
					ignore = append(ignore, p.Address)
					if a := t.Inv().ClusterAddr(p); a != p.Address {
						ignore = append(ignore, a)
					}
				}
				return map[string]any{"Trusted": h.TrustedSources, "Ignore": ignore, "SSHPort": t.Inv().SSHFor(t.Node).Port}
			}), func(ctx context.Context, t *Target) error { return host.RestartIfActive(ctx, t.T, "fail2ban") }),
			serviceStep("fail2ban.service"),
			fail2banReadyStep())
	}
	if inventory.Enabled(h.SSHD) {
		steps = append(steps, sshdStep())
	}
	if inventory.Enabled(h.Rkhunter) {
		steps = append(steps,
			fileStep("rkhunter schedule", "/etc/default/rkhunter", 0o644, templateFile("rkhunter.default", func(*Target) any { return nil }), nil),
			fileStep("rkhunter update settings", "/etc/rkhunter.conf.local", 0o644, templateFile("rkhunter.conf.local", func(*Target) any { return nil }), nil),
			fileStep("rkhunter apt hook", "/etc/apt/apt.conf.d/91debship-rkhunter", 0o644, templateFile("rkhunter-apt.conf", func(*Target) any { return nil }), nil),
			shStep("rkhunter file properties database", "run rkhunter --propupd on the node to see the error",
				"test -s /var/lib/rkhunter/db/rkhunter.dat && echo ok || echo 'rkhunter --propupd (first run)'",
				"rkhunter --propupd --nocolors >/dev/null"))
	}
	return Phase{Name: PhaseHarden, Stages: []Stage{{Nodes: inv.Nodes, Steps: steps}}}
}

const ufwScript = "/etc/debship/ufw-rules.sh"

func ufwStep() Step {
	content := templateFile("ufw-rules.sh", func(t *Target) any { return ufwData(t.Inv(), t.Node) })
	return Step{
		Name: "ufw firewall",
		File: &FileSpec{Path: ufwScript, Content: func(_ context.Context, t *Target) ([]byte, error) { return content(t) }},
		Hint: "ufw needs iptables in the kernel; the script is " + ufwScript + " on the node",
		Check: func(ctx context.Context, t *Target) (State, error) {
			b, err := content(t)
			if err != nil {
				return State{}, err
			}
			st, err := fileState(ctx, t, ufwScript, b, 0o755)
			if err != nil || !st.Done {
				if st.Reason != "" {
					st.Reason = "rules change (" + st.Reason + ")"
				}
				return st, err
			}
			fw, err := host.Firewall(ctx, t.T)
			return doneIf(fw == "active", "ufw inactive"), err
		},
		Apply: func(ctx context.Context, t *Target) error {
			b, err := content(t)
			if err != nil {
				return err
			}
			if err := t.T.Upload(ctx, ufwScript, b, 0o755); err != nil {
				return err
			}
			_, err = t.Sh(ctx, ufwScript)
			return err
		},
	}
}

// fail2banReadyStep waits until the sshd jail answers: fail2ban starts
// slowly, and a jail that cannot start only shows there.
func fail2banReadyStep() Step {
	return shStep("fail2ban sshd jail running",
		"see journalctl -u fail2ban on the node; the sshd jail needs python3-systemd (backend = systemd)",
		"fail2ban-client status sshd >/dev/null 2>&1 && echo ok || echo 'sshd jail not running yet'",
		"i=0; until fail2ban-client status sshd >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 60 ] || { fail2ban-client status sshd; exit 1; }; sleep 0.5; done")
}

const sshdDropIn = "/etc/ssh/sshd_config.d/50-debship-hardening.conf"

func sshdContent(t *Target) ([]byte, error) {
	inv := t.Inv()
	h := inv.HardeningOptions()
	users := map[string]bool{}
	for _, n := range inv.Nodes {
		users[inv.SSHFor(n).User] = true
	}
	for _, u := range h.AllowUsers {
		users[u] = true
	}
	var list []string
	for u := range users {
		list = append(list, u)
	}
	sort.Strings(list)
	return render("sshd-hardening.conf", map[string]any{"PermitRootLogin": h.PermitRootLogin, "AllowUsers": list})
}

// sshdStep installs the sshd drop-in without ever locking the operator
// out: sshd -t validates it, and after the reload a second, fresh SSH login
// (key, sudo) must work; otherwise the previous file is restored over the
// connection that is still open.
func sshdStep() Step {
	return Step{
		Name: "sshd hardening",
		File: &FileSpec{Path: sshdDropIn, Content: func(_ context.Context, t *Target) ([]byte, error) { return sshdContent(t) }},
		Hint: "the previous sshd configuration was restored; run sshd -t on the node and check [ssh] user/key and [hardening] allow-users",
		Check: func(ctx context.Context, t *Target) (State, error) {
			b, err := sshdContent(t)
			if err != nil {
				return State{}, err
			}
			return fileState(ctx, t, sshdDropIn, b, 0o644)
		},
		Apply: func(ctx context.Context, t *Target) error {
			if t.Run.Opts.Relogin == nil {
				return fmt.Errorf("cannot prove a second login works (no way to log in again), so sshd is left alone")
			}
			b, err := sshdContent(t)
			if err != nil {
				return err
			}
			backup := sshdDropIn + ".debship-previous"
			if _, err := t.Sh(ctx, fmt.Sprintf("rm -f %[2]s; if [ -f %[1]s ]; then cp -p %[1]s %[2]s; fi", sshdDropIn, backup)); err != nil {
				return err
			}
			restore := func(ctx context.Context) error {
				if _, err := t.Sh(ctx, fmt.Sprintf("if [ -f %[2]s ]; then mv -f %[2]s %[1]s; else rm -f %[1]s; fi; sshd -t", sshdDropIn, backup)); err != nil {
					return err
				}
				return host.Reload(ctx, t.T, "ssh")
			}
			if err := t.T.Upload(ctx, sshdDropIn, b, 0o644); err != nil {
				return err
			}
			if _, err := t.Sh(ctx, "mkdir -p /run/sshd && sshd -t"); err != nil {
				_ = restore(context.WithoutCancel(ctx))
				return fmt.Errorf("sshd -t rejects the new configuration: %w", err)
			}
			if err := host.Reload(ctx, t.T, "ssh"); err != nil {
				_ = restore(context.WithoutCancel(ctx))
				return err
			}
			if err := proveLogin(ctx, t); err != nil {
				if rerr := restore(context.WithoutCancel(ctx)); rerr != nil {
					return fmt.Errorf("a new SSH login fails after the change (%v), and restoring the previous configuration failed too: %v", err, rerr)
				}
				return fmt.Errorf("a new SSH login fails with the hardened sshd, so the previous configuration was restored: %w", err)
			}
			_, err = t.Sh(ctx, "rm -f "+backup)
			return err
		},
	}
}

// proveLogin opens a fresh connection (a full login with the operator's
// key) and runs a command with sudo.
func proveLogin(ctx context.Context, t *Target) error {
	var last error
	// sshd reloads asynchronously; give it a moment.
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(i) * 500 * time.Millisecond)
		c, err := t.Run.Opts.Relogin(ctx, t.Node)
		if err != nil {
			last = err
			continue
		}
		_, err = transport.Output(ctx, c, "true")
		c.Close()
		if err == nil {
			return nil
		}
		last = err
	}
	return last
}
