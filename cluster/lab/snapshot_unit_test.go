package lab

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSnapshotNames(t *testing.T) {
	for _, ok := range []string{"applied", "applied-1.4", "a", "test-trixie-2n-0123456789ab", "x_y"} {
		if err := CheckSnapshotName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Applied", "-x", ".hidden", "../up", "a/b", "a b", strings.Repeat("a", 64)} {
		err := CheckSnapshotName(bad)
		if err == nil || !strings.Contains(err.Error(), "lower-case letters") {
			t.Errorf("%q: %v, want the rule in one sentence", bad, err)
		}
	}
}

// A snapshot of another shape than asked for is refused before anything
// happens to the running lab, and a missing one names the list command.
func TestSnapshotShape(t *testing.T) {
	dir := t.TempDir()
	s := Snapshot{Name: "applied", Release: "trixie", Subnet: DefaultSubnet,
		Nodes: []Node{{Name: "node1"}, {Name: "node2"}}, Created: time.Now().UTC()}
	b, _ := json.Marshal(s)
	if err := os.MkdirAll(snapshotDir(dir, "applied"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snapshotDir(dir, "applied"), "snapshot.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := Options{Dir: dir, Snapshot: "applied"}.withDefaults()
	if err != nil || o.Nodes != 2 || o.Release != "trixie" || o.Subnet != DefaultSubnet {
		t.Fatalf("shape from the snapshot: %+v %v", o, err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Nodes: 3}, "snapshot applied has 2 nodes, not 3: leave out --nodes"},
		{Options{Release: "bookworm"}, "snapshot applied runs trixie, not bookworm: leave out --release"},
		{Options{Subnet: netip.MustParsePrefix("10.9.0.0/24")}, "uses the subnet 10.231.0.0/24, not 10.9.0.0/24"},
		{Options{Snapshot: "gone"}, "no snapshot gone in " + filepath.Join(dir, "snapshots") + " (list them with: debship lab snapshot list)"},
	} {
		c.o.Dir = dir
		if c.o.Snapshot == "" {
			c.o.Snapshot = "applied"
		}
		if _, err := c.o.withDefaults(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	ss, err := ListSnapshots(dir)
	if err != nil || len(ss) != 1 || ss[0].Name != "applied" || ss[0].SizeBytes <= 0 {
		t.Errorf("list: %+v %v", ss, err)
	}
}
