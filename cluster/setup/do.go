package setup

import (
	"context"
	"fmt"
	"strings"

	"gitlab.com/debship/debship/cluster/inventory"
)

// The DigitalOcean agents and their one token on the nodes. Pacemaker's
// fencer finds fence agents as /usr/sbin/fence_*.
const (
	doAgentPath    = "/usr/lib/ocf/resource.d/debship/do-reserved-ip"
	doFenceAgent   = "/usr/sbin/" + inventory.FenceDigitalOcean
	doTokenPath    = "/etc/debship/digitalocean-token"
	doFenceTimeout = "180s"
)

// doAgentSteps install the agents the inventory uses (the reserved-IP
// agent, the fence agent or both) and the token they share.
func doAgentSteps(inv *inventory.Inventory) []Step {
	token := func(t *Target) ([]byte, error) { return []byte(t.Run.secrets.doToken + "\n"), nil }
	var steps []Step
	if inv.FloatingIP.Provider == inventory.ProviderDigitalOcean {
		steps = append(steps, fileStep("DigitalOcean reserved-IP agent", doAgentPath, 0o755,
			func(*Target) ([]byte, error) { return render("do-reserved-ip", nil) }, nil))
	}
	if inv.FenceAgent() == inventory.FenceDigitalOcean {
		steps = append(steps, fileStep("DigitalOcean fence agent", doFenceAgent, 0o755,
			func(*Target) ([]byte, error) { return render(inventory.FenceDigitalOcean, nil) }, nil))
	}
	return append(steps, Step{
		Name: "DigitalOcean API token",
		Hint: "the token comes from token-file or token-env in [floating-ip.digitalocean] (or [fencing])",
		Check: func(ctx context.Context, t *Target) (State, error) {
			b, err := token(t)
			if err != nil {
				return State{}, err
			}
			st, err := fileState(ctx, t, doTokenPath, b, 0o600)
			if !st.Done && st.Reason != "" {
				st.Reason = fmt.Sprintf("store the token in %s (root only)", doTokenPath)
			}
			return st, err
		},
		Apply: func(ctx context.Context, t *Target) error {
			b, err := token(t)
			if err != nil {
				return err
			}
			return t.T.Upload(ctx, doTokenPath, b, 0o600)
		},
	})
}

// doFenceParams are fence_digitalocean's stonith options: the token's file
// (never the token), the API, and the droplet of each node the inventory
// names (the others are looked up by droplet name).
func doFenceParams(inv *inventory.Inventory, params map[string]string) {
	params["token_file"] = doTokenPath
	params["api_url"] = inv.DOAPI()
	var m []string
	for _, n := range inv.Members() {
		if id := inv.Fencing.Droplets[n.Name]; id > 0 {
			m = append(m, fmt.Sprintf("%s:%d", n.Name, id))
		}
	}
	if len(m) > 0 {
		params["pcmk_host_map"] = strings.Join(m, ";")
	}
	// reboot is power_off, then power_on, each waited for (power_timeout
	// 60 s) and retried through short API outages: more than pacemaker's
	// default 60 s.
	params["pcmk_reboot_timeout"] = doFenceTimeout
	params["pcmk_off_timeout"] = doFenceTimeout
}
