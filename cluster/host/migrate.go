package host

import (
	"context"
	"strings"

	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/templates"
)

// Migration is what a run of a package's migration unit reported.
type Migration struct {
	Ran    bool   // false: the package ships no such unit
	RC     string // systemctl start's exit status ("0": it succeeded)
	Status string // the unit's ExecMainStatus
	// Output is the end of the run's output, empty lines dropped.
	Output []string
}

// Failed reports whether the migration ran and failed.
func (m Migration) Failed() bool { return m.Ran && m.RC != "0" }

// How says how it failed: "exited with status 3", or "failed" when the
// unit gave no exit status (killed, or it never started).
func (m Migration) How() string {
	if m.Status != "" && m.Status != "0" {
		return "exited with status " + m.Status
	}
	return "failed"
}

// MigrationLines is how much of a migration's output RunMigration keeps:
// the end, where the error is.
const MigrationLines = 20

// RunMigration starts the oneshot migration unit on the node and waits
// for it to finish (deploy/migrate.sh), keeping the last MigrationLines
// lines of its output. A node without the unit runs nothing (Ran is
// false). The error is only for not getting an answer; a failed migration
// is m.Failed().
func RunMigration(ctx context.Context, t transport.Transport, unit string) (Migration, error) {
	script, err := templates.Render("deploy/migrate.sh", map[string]any{"Unit": unit, "Lines": MigrationLines})
	if err != nil {
		return Migration{}, err
	}
	out, err := transport.Output(ctx, t, string(script))
	if err != nil {
		return Migration{}, err
	}
	return ParseMigration(out), nil
}

// ParseMigration reads migrate.sh's report: key=value lines, then the
// run's output after "-- output".
func ParseMigration(out string) Migration {
	var m Migration
	head, output, _ := strings.Cut(out, "-- output")
	output = strings.TrimPrefix(output, "\n")
	for _, l := range strings.Split(head, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch k {
		case "migration":
			m.Ran = v == "ran"
		case "rc":
			m.RC = v
		case "status":
			m.Status = v
		}
	}
	for _, l := range strings.Split(strings.TrimRight(output, "\n"), "\n") {
		if l != "" {
			m.Output = append(m.Output, l)
		}
	}
	return m
}
