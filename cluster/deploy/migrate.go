package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/debbuild"
)

// Migration outcomes in NodeResult.Migration.
const (
	MigrationRan     = "ran"
	MigrationFailed  = "failed"
	MigrationSkipped = "skipped" // --skip-migrate
)

// migrate runs the package's migration on node n when this deploy has not
// run it yet: on the first updated node, after its install, before it
// takes traffic, with the lock held. A .deb without a migration, or
// --skip-migrate, runs nothing. An error means the migration failed (its
// output's end is in nr.MigrationOutput) and the node must go back.
func (d *deployment) migrate(ctx context.Context, t transport.Transport, n string, nr *NodeResult) error {
	if d.migrated {
		return nil
	}
	d.migrated = true
	unit := debbuild.MigrateUnit(d.inv.App.Package)
	if d.o.SkipMigrate {
		nr.Migration = MigrationSkipped
		d.log(n, "migration skipped (--skip-migrate): %s was not started", unit)
		return nil
	}
	end := d.step(n, "migrate", "systemctl start %s", unit)
	mctx, cancel := context.WithTimeout(ctx, d.o.MigrateTimeout)
	m, err := host.RunMigration(mctx, t, unit)
	timedOut := mctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil {
		// A migration cut off by the timeout or a lost node must not go on
		// running under the node being rolled back.
		if !errors.Is(causeOf(ctx, err), errNodeLeft) {
			sctx, c := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_ = host.Stop(sctx, t, unit)
			c()
		}
		if timedOut {
			err = fmt.Errorf("the migration %s did not finish within %s and was stopped", unit, d.o.MigrateTimeout)
		}
		nr.Migration = MigrationFailed
		end(err, "")
		return err
	}
	if !m.Ran {
		end(nil, "the package has no migration")
		return nil
	}
	nr.MigrationOutput = m.Output
	if m.Failed() {
		nr.Migration = MigrationFailed
		err := fmt.Errorf("the migration (%s) %s%s", unit, m.How(), outputTail(m.Output))
		end(err, "")
		return err
	}
	nr.Migration = MigrationRan
	if len(m.Output) > 0 {
		end(nil, "done: %s", m.Output[len(m.Output)-1])
	} else {
		end(nil, "done")
	}
	return nil
}

// outputTail is the last lines of a migration's output for a one-line
// message.
func outputTail(lines []string) string {
	if len(lines) == 0 {
		return "; it printed nothing (journalctl -u on the node has systemd's view)"
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return "; its output ends: " + strings.Join(lines, " | ")
}
