package debbuild

import (
	"path/filepath"
	"testing"
	"time"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/inspect"
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
		{debfile.ModeSystemd, true, debfile.ModeSystemd, debfile.ModeSystemd},
		{debfile.ModeCluster, true, debfile.ModeCluster, debfile.ModeCluster},
		{debfile.ModeSystemd, false, debfile.ModeSystemd, ""},
		{debfile.ModeCluster, false, "", ""},
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
		p, err := inspect.ReadPackage(out)
		if err != nil {
			t.Fatal(err)
		}
		if p.Mode != c.want || p.Field(debfile.ModeField) != c.wantField {
			t.Errorf("built in mode %s (field written: %v): read back mode %q, %s %q; want %q, %q",
				c.mode, c.field, p.Mode, debfile.ModeField, p.Field(debfile.ModeField), c.want, c.wantField)
		}
	}
}
