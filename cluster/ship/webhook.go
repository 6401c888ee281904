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
