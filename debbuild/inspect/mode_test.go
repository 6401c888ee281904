package inspect

import "testing"

// TestStartsUnits: what counts as a postinst that starts the app, in the
// forms Debian's helpers write it.
func TestStartsUnits(t *testing.T) {
	for script, want := range map[string]bool{
		"deb-systemd-invoke $_dh_action 'app.service' >/dev/null || true": true,
		"\tdeb-systemd-helper enable 'app.service' >/dev/null || true":    true,
		"systemctl --system enable --now app.service":                     true,
		"systemctl start app":                                      true,
		"deb-systemd-invoke stop 'app.service'":                    false,
		"deb-systemd-helper update-state 'app.service' >/dev/null": false,
		"systemctl --system daemon-reload >/dev/null || true":      false,
		"# deb-systemd-invoke start app.service, in a comment":     false,
		"": false,
	} {
		if got := startsUnits(script); got != want {
			t.Errorf("startsUnits(%q) = %v, want %v", script, got, want)
		}
	}
}
