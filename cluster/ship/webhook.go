package ship

import (
	"context"
	"fmt"
	"os"

	"gitlab.com/debship/debship/ci/webhook"
	"gitlab.com/debship/debship/cluster/deploy"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/progress"
)

// RollingDeployer is the deploy of `debship webhook serve` for a
// configuration without a [deploy] command (webhook.SelectDeployer): the
// rolling deploy to the configuration's inventory, with the job named as
// the lock's holder.
func RollingDeployer(cfg *webhook.Config) (webhook.Deployer, error) {
	if cfg.Inventory == "" {
		return nil, fmt.Errorf("%s has no inventory to deploy to", cfg.File)
	}
	if _, err := inventory.Load(cfg.Inventory); err != nil {
		return nil, err
	}
	return webhook.DeployerFunc(func(ctx context.Context, job webhook.Job, deb string) error {
		// Read again for each deploy: an edited inventory (a new node, a
		// moved key) takes effect without restarting the receiver.
		inv, err := inventory.Load(cfg.Inventory)
		if err != nil {
			return err
		}
		holder := "webhook job " + job.ID
		if job.Tag != "" {
			holder += " (" + job.Tag + ")"
		}
		// Progress lines go to the receiver's journal; a cancelled ctx
		// (shutdown grace over, deploy timeout) finishes or rolls back the
		// node in progress and releases the lock, as the receiver expects.
		_, err = deploy.Run(ctx, deploy.Options{Inventory: inv, Deb: deb, Holder: holder, Progress: progress.LinesProgress(os.Stderr)})
		return err
	}), nil
}

// ReceiverTarget is the receiver's webhook.Options.Target for a
// configuration without [gitlab] target: the Debian release the
// inventory's nodes run (NodesTarget, as `debship deploy` picks among
// .debs), read before each fetch, so that nodes upgraded to a new release
// get its .deb without a restart of the receiver.
func ReceiverTarget(cfg *webhook.Config) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if cfg.Inventory == "" {
			return "", fmt.Errorf("%s names no [gitlab] target and no inventory to read the nodes' Debian release from", cfg.File)
		}
		inv, err := inventory.Load(cfg.Inventory)
		if err != nil {
			return "", err
		}
		t, err := NodesTarget(ctx, inv, inventory.ConnectOptions{})
		if err != nil {
			return "", fmt.Errorf("%w; or name the release with [gitlab] target in %s", err, cfg.File)
		}
		return t, nil
	}
}
