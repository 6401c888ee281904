package debbuild

import (
	"path/filepath"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/testenv"
)

// TestModeReadBack: a package says which mode it was built in, read back
// from the .deb as deploy and cluster apply read it: from its
// X-Debship-Mode field, and for a .deb built before debship wrote that
// field, from what its postinst does (the systemd mode's starts the unit,
// the cluster mode's starts nothing).
func TestModeReadBack(t *testing.T) {
	testenv.NeedCommand(t, "dpkg-deb")
	for _, c := range []struct {
		mode      string
		field     bool
		want      string
		wantField string
	}{
		{ModeSystemd, true, ModeSystemd, ModeSystemd},
		{ModeCluster, true, ModeCluster, ModeCluster},
		{ModeSystemd, false, ModeSystemd, ""},
		{ModeCluster, false, "", ""},
	} {
		spec, err := LoadSpec(example, Overrides{Mode: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		g := &generator{spec: spec, root: root, sde: 1770116400, debVersion: "1.4-1"}
		if err := g.generate(); err != nil {
			t.Fatal(err)
		}
		if !c.field {
			spec.Mode = "" // an older debship wrote no field
		}
		out := filepath.Join(t.TempDir(), "hello-web_1.4-1_all.deb")
		if err := writeDeb(root, out, debInfo{spec: spec, version: "1.4-1", arch: "all", scripts: g.scripts, mtime: time.Unix(1770116400, 0)}); err != nil {
			t.Fatal(err)
		}
		p, err := ReadPackage(out)
		if err != nil {
			t.Fatal(err)
		}
		if p.Mode != c.want || p.Field(ModeField) != c.wantField {
			t.Errorf("built in mode %s (field written: %v): read back mode %q, %s %q; want %q, %q",
				c.mode, c.field, p.Mode, ModeField, p.Field(ModeField), c.want, c.wantField)
		}
	}
}

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
