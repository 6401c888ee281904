package setup

import (
	"context"
	"fmt"

	"gitlab.com/debship/debship/cluster/inventory"
)

// The DigitalOcean reserved-IP agent and its token on the nodes.
const (
	doAgentPath = "/usr/lib/ocf/resource.d/debship/do-reserved-ip"
	doTokenPath = "/etc/debship/digitalocean-token"
)

func doAPI(inv *inventory.Inventory) string {
	if d := inv.FloatingIP.DigitalOcean; d != nil && d.APIURL != "" {
		return d.APIURL
	}
	return inventory.DefaultDOAPI
}

func doAgentSteps() []Step {
	token := func(t *Target) ([]byte, error) { return []byte(t.Run.secrets.doToken + "\n"), nil }
	return []Step{
		fileStep("DigitalOcean reserved-IP agent", doAgentPath, 0o755,
			func(*Target) ([]byte, error) { return render("do-reserved-ip", nil) }, nil),
		{
			Name: "DigitalOcean API token",
			Hint: "the token comes from token-file or token-env in [floating-ip.digitalocean]",
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
		},
	}
}
