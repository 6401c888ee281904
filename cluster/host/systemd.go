package host

import (
	"context"
	"fmt"
	"strings"

	"gitlab.com/debship/debship/cluster/transport"
)

// UnitState says whether a unit is enabled and whether it is active.
func UnitState(ctx context.Context, t transport.Transport, unit string) (enabled, active bool, err error) {
	out, err := transport.Output(ctx, t, fmt.Sprintf("echo $(systemctl is-enabled %[1]s 2>/dev/null) $(systemctl is-active %[1]s 2>/dev/null)", q(unit)))
	if err != nil {
		return false, false, err
	}
	f := strings.Fields(out)
	return len(f) > 0 && f[0] == "enabled", len(f) > 1 && f[1] == "active", nil
}

// ActiveState is systemctl is-active's answer: "active", "inactive",
// "deactivating", "failed", …
func ActiveState(ctx context.Context, t transport.Transport, unit string) (string, error) {
	return transport.Output(ctx, t, "systemctl is-active "+q(unit)+" || true")
}

// IsActive reports whether a unit is active. The error is only for not
// getting an answer.
func IsActive(ctx context.Context, t transport.Transport, unit string) (bool, error) {
	_, _, err := t.Run(ctx, "systemctl -q is-active "+q(unit))
	if err != nil && transport.ExitCode(err) < 0 {
		return false, err
	}
	return err == nil, nil
}

// EnableStart enables a unit and starts it.
func EnableStart(ctx context.Context, t transport.Transport, unit string) error {
	_, err := transport.Output(ctx, t, fmt.Sprintf("systemctl enable %[1]s >/dev/null 2>&1 && systemctl start %[1]s", q(unit)))
	return err
}

// EnableRestart enables a unit and restarts it, for a changed
// configuration that the unit reads at start only.
func EnableRestart(ctx context.Context, t transport.Transport, unit string) error {
	_, err := transport.Output(ctx, t, fmt.Sprintf("systemctl enable %[1]s >/dev/null 2>&1 && systemctl restart %[1]s", q(unit)))
	return err
}

// RestartIfActive restarts a unit that runs; a stopped one is left
// stopped (it reads the new configuration when it starts).
func RestartIfActive(ctx context.Context, t transport.Transport, unit string) error {
	_, err := transport.Output(ctx, t, fmt.Sprintf("if systemctl -q is-active %[1]s; then systemctl restart %[1]s; fi", q(unit)))
	return err
}

// Reload reloads a unit's configuration.
func Reload(ctx context.Context, t transport.Transport, unit string) error {
	_, err := transport.Output(ctx, t, "systemctl reload "+q(unit))
	return err
}

// Stop stops units; units that do not exist are no error.
func Stop(ctx context.Context, t transport.Transport, units ...string) error {
	_, err := transport.Output(ctx, t, "systemctl stop "+quoteAll(units)+" 2>/dev/null || true")
	return err
}

// DaemonReload makes systemd read changed unit files and drop-ins.
func DaemonReload(ctx context.Context, t transport.Transport) error {
	_, err := transport.Output(ctx, t, "systemctl daemon-reload")
	return err
}

// HasUnitFile reports whether systemd has a unit file for unit (a drop-in
// alone does not count). The error is only for not getting an answer.
func HasUnitFile(ctx context.Context, t transport.Transport, unit string) (bool, error) {
	out, err := transport.Output(ctx, t, "systemctl show -p FragmentPath --value "+q(unit)+" 2>/dev/null || true")
	return out != "", err
}
