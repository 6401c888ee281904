package setup

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/debbuild/debfile"
)

// debInMode writes a small real hello-web 1.0-1 .deb that records mode.
func debInMode(t *testing.T, mode string) string {
	t.Helper()
	deb := filepath.Join(t.TempDir(), "hello-web_1.0-1_all.deb")
	if err := debfile.WriteTree(t.TempDir(), deb, debfile.TreePackage{Name: "hello-web", Version: "1.0-1", Arch: "all",
		Maintainer: "t <t@example.org>", Description: "test package\n test", Compression: "gzip",
		MTime: time.Unix(1767225600, 0), Fields: map[string]string{debfile.ModeField: mode}}); err != nil {
		t.Fatal(err)
	}
	return deb
}

// appInventory is the two-node lab inventory without shared storage: the
// app phase is then the install, the migration and the resource.
func appInventory(t *testing.T) *inventory.Inventory {
	inv := labInventory(t, 2)
	inv.Storage = nil
	return inv
}

// TestApplyPackageRefusesSystemdMode: cluster apply --package of a .deb
// built in mode "systemd" (whose postinst would start the app outside
// pacemaker on every node) is refused before any node is asked anything,
// with the fix; one built in mode "cluster" is taken.
func TestApplyPackageRefusesSystemdMode(t *testing.T) {
	inv := appInventory(t)
	conns := fakeConns(inv)
	_, err := NewRun(inv, conns, Options{Package: debInMode(t, debfile.ModeSystemd)})
	want := `hello-web_1.0-1_all.deb was built in mode "systemd": its postinst would enable and start hello-web.service on every node, outside pacemaker; set mode = "cluster" under [tool.debship] in pyproject.toml`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("apply --package of a systemd-mode .deb: %v, want %q", err, want)
	}
	for n, c := range conns {
		if ran := c.(*fakeT).ran; len(ran) > 0 {
			t.Errorf("%s was asked %q", n, ran)
		}
	}
	if _, err := NewRun(inv, conns, Options{Package: debInMode(t, debfile.ModeCluster)}); err != nil {
		t.Errorf("apply --package of a cluster-mode .deb: %v", err)
	}
}

// firstInstall plays what the app phase sees of a fresh two-node cluster:
// dpkg (the app is installed once apt-get installs it), the package's
// migration unit and the CIB's app resource and constraints. It records
// what changes, across the nodes, in order.
type firstInstall struct {
	mu          sync.Mutex
	migrate     int    // the migration's exit status; -1: the package has none
	output      string // what the migration prints
	installed   map[string]bool
	resource    bool
	constraints []string
	order       []string
}

var constraintID = regexp.MustCompile(` id=(\S+)`)

func (c *firstInstall) conns(inv *inventory.Inventory) map[string]transport.Transport {
	m := fakeConns(inv)
	for name, t := range m {
		t.(*fakeT).respond = func(cmd string) (string, bool, error) { return c.answer(name, cmd) }
	}
	return m
}

func (c *firstInstall) answer(node, cmd string) (string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.HasPrefix(cmd, "dpkg-query -W"):
		if c.installed[node] {
			return "1.0-1", true, nil
		}
		return "", true, nil
	case strings.Contains(cmd, "apt-get install"):
		c.installed[node] = true
		c.order = append(c.order, "install on "+node)
	case strings.HasPrefix(cmd, "dpkg-deb -f"):
		return "hello-web", true, nil
	case strings.HasPrefix(cmd, "systemctl show -p FragmentPath --value hello-web-migrate.service"):
		if c.migrate >= 0 {
			return "/lib/systemd/system/hello-web-migrate.service", true, nil
		}
		return "", true, nil
	case strings.HasPrefix(cmd, "# migrate.sh"):
		c.order = append(c.order, "migrate on "+node)
		return fmt.Sprintf("migration=ran\nrc=%d\nstatus=%d\n-- output\n%s\n", min(c.migrate, 1), c.migrate, c.output), true, nil
	case strings.HasPrefix(cmd, "cibadmin --query --xpath //primitive[@id='app']"),
		strings.HasPrefix(cmd, "cibadmin --query --xpath '//primitive[@id='\"'\"'app'\"'\"']'"):
		if c.resource {
			return `<primitive id="app" class="systemd" type="hello-web"/>`, true, nil
		}
		return "", true, &transport.CommandError{Node: node, Cmd: cmd, ExitCode: 105}
	case strings.HasPrefix(cmd, "pcs resource create app "):
		c.resource = true
		c.order = append(c.order, "create the app resource on "+node)
	case strings.HasPrefix(cmd, "pcs constraint "):
		c.constraints = append(c.constraints, constraintID.FindStringSubmatch(cmd)[1])
	case cmd == "cibadmin --query --scope constraints":
		var b strings.Builder
		for _, id := range c.constraints {
			fmt.Fprintf(&b, `<rsc_order id="%s"/>`, id)
		}
		return "<constraints>" + b.String() + "</constraints>", true, nil
	default:
		return "", false, nil
	}
	return "", true, nil
}

// TestApplyFirstInstallMigrates: cluster apply --package installs the app
// on every node, then runs the package's migration once, on one node,
// before it creates the app resource (which starts the app): a fresh
// cluster never serves an unmigrated database. A failed migration stops
// the apply with its output and nothing started; a package without a
// migration runs none; once the app runs, apply runs no migration (the
// deploys do).
func TestApplyFirstInstallMigrates(t *testing.T) {
	installs := []string{"install on node1", "install on node2"}
	for _, c := range []struct {
		name    string
		migrate int
		order   []string
		err     string
	}{
		{"migrated before the app starts", 0, append(installs, "migrate on node1", "create the app resource on node1"), ""},
		{"a failed migration starts nothing", 3, append(installs, "migrate on node1"),
			"the migration hello-web-migrate.service exited with status 3, so the app was not started; its output ends:\n  Applying shop.0001_initial...\n  django.db.utils.OperationalError: unable to open database file"},
		{"a package without a migration", -1, append(installs, "create the app resource on node1"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			inv := appInventory(t)
			fc := &firstInstall{migrate: c.migrate, installed: map[string]bool{},
				output: "Applying shop.0001_initial...\ndjango.db.utils.OperationalError: unable to open database file"}
			r, err := NewRun(inv, fc.conns(inv), Options{Only: []string{PhaseApp}, Package: debInMode(t, debfile.ModeCluster)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Apply(context.Background())
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("apply: %v, want %q", err, c.err)
			}
			// The nodes install in parallel.
			got := fc.order
			if len(got) >= 2 {
				got = append([]string{}, got...)
				if got[0] > got[1] {
					got[0], got[1] = got[1], got[0]
				}
			}
			if !reflect.DeepEqual(got, c.order) {
				t.Errorf("apply did %q, want %q", fc.order, c.order)
			}
			if c.err != "" {
				return
			}
			// A second apply: the app runs, so no migration again.
			fc.order = nil
			r, err = NewRun(inv, fc.conns(inv), Options{Only: []string{PhaseApp}, Package: debInMode(t, debfile.ModeCluster)})
			if err != nil {
				t.Fatal(err)
			}
			if rep, err := r.Apply(context.Background()); err != nil || len(rep.Changes) > 0 || len(fc.order) > 0 {
				t.Errorf("second apply: %v, changes %+v, did %q", err, rep, fc.order)
			}
		})
	}
}
