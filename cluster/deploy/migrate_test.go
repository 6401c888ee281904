package deploy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/debbuild/debfile"
)

// stepOrder names the deploy's node-changing steps in the order they ran:
// the migration must come after the first node's install, before that node
// is let back into service (its ban cleared), and only once.
func stepOrder(f *fakeCluster) []string {
	var order []string
	for _, c := range f.commands(`crm_resource --(ban|clear --resource app-clone)|# move-ip|apt-get install -y|# migrate.sh|cibadmin --(create|delete)`) {
		node, cmd, _ := strings.Cut(c, ": ")
		switch {
		case strings.Contains(cmd, "--ban"):
			order = append(order, "ban "+reNode.FindStringSubmatch(cmd)[1])
		case strings.Contains(cmd, "--clear"):
			order = append(order, "in service "+reNode.FindStringSubmatch(cmd)[1])
		case strings.Contains(cmd, "move-ip"):
			order = append(order, "move-ip")
		case strings.Contains(cmd, "migrate.sh"):
			order = append(order, "migrate on "+node)
		case strings.HasPrefix(cmd, "cibadmin --create"):
			order = append(order, "lock")
		case strings.HasPrefix(cmd, "cibadmin --delete"):
			order = append(order, "unlock")
		default:
			order = append(order, "install on "+node)
		}
	}
	return order
}

func TestRunFakeMigration(t *testing.T) {
	v1 := makeDeb(t, "hello-web", "1.0-1")
	v2 := makeDeb(t, "hello-web", "2.0-1")
	other := makeDeb(t, "other-app", "2.0-1")
	cases := []struct {
		name      string
		deb       string
		kind      string
		skip      bool
		migration map[string]int
		outcome   string
		order     []string
		runs      []string
		migrated  string   // NodeResult.Migration of the first node
		message   []string // in the summary and the history's end record
	}{
		{"once, on the first node, before it takes traffic", v2, KindDeploy, false, map[string]int{"2.0-1": 0}, OutcomeSuccess,
			[]string{"lock", "ban node2", "install on node2", "migrate on node2", "in service node2", "move-ip", "ban node1", "install on node1", "in service node1", "unlock"},
			[]string{"node2 2.0-1"}, MigrationRan, nil},
		{"a failing migration puts the node back", v2, KindDeploy, false, map[string]int{"2.0-1": 3}, OutcomeRolledBack,
			[]string{"lock", "ban node2", "install on node2", "migrate on node2", "ban node2", "install on node2", "in service node2", "unlock"},
			[]string{"node2 2.0-1"}, MigrationFailed,
			[]string{"the migration (hello-web-migrate.service) exited with status 3", "sqlite3.OperationalError: no such table: shop_item", "node2 was rolled back to 1.0-1"}},
		{"--skip-migrate", v2, KindDeploy, true, map[string]int{"2.0-1": 0}, OutcomeSuccess,
			[]string{"lock", "ban node2", "install on node2", "in service node2", "move-ip", "ban node1", "install on node1", "in service node1", "unlock"},
			nil, MigrationSkipped, nil},
		{"a package without a migration", v2, KindDeploy, false, map[string]int{}, OutcomeSuccess,
			[]string{"lock", "ban node2", "install on node2", "migrate on node2", "in service node2", "move-ip", "ban node1", "install on node1", "in service node1", "unlock"},
			nil, "", nil},
		{"a refused deploy runs none", other, KindDeploy, false, map[string]int{"2.0-1": 0}, OutcomeRefused, nil, nil, "", nil},
		{"a rollback runs the target's own migration", "", KindRollback, false, map[string]int{"1.0-1": 0, "2.0-1": 0}, OutcomeSuccess,
			[]string{"lock", "ban node1", "install on node1", "migrate on node1", "in service node1", "move-ip", "ban node2", "install on node2", "in service node2", "unlock"},
			[]string{"node1 1.0-1"}, MigrationRan, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeCluster("1.0-1")
			f.seed(t, v1)
			if c.kind == KindRollback {
				// After a deploy of 2.0-1 (whose migration is not counted).
				f.seed(t, v2)
				for _, n := range f.nodes {
					f.inst[n] = "2.0-1"
				}
				f.history["node1"] = []string{`{"id":"a","event":"start","kind":"deploy","package":"hello-web","version":"2.0-1","from":{"node1":"1.0-1","node2":"1.0-1"},"time":"2026-01-01T00:00:00Z"}`,
					`{"id":"a","event":"end","kind":"deploy","package":"hello-web","version":"2.0-1","outcome":"success","time":"2026-01-01T00:01:00Z"}`}
				f.history["node2"] = f.history["node1"]
				f.holder = "node2"
			}
			f.migration = c.migration
			o, _ := fakeOptions(f, t, c.deb)
			o.Kind, o.SkipMigrate = c.kind, c.skip
			res, err := Run(context.Background(), o)
			if res.Outcome != c.outcome {
				t.Fatalf("outcome %s (%v), want %s\nran:\n%s", res.Outcome, err, c.outcome, strings.Join(f.ran, "\n"))
			}
			if got := stepOrder(f); !reflect.DeepEqual(got, c.order) {
				t.Errorf("steps:\n%q\nwant\n%q", got, c.order)
			}
			if !reflect.DeepEqual(f.migrations, c.runs) {
				t.Errorf("migrations ran: %q, want %q", f.migrations, c.runs)
			}
			if len(res.Nodes) > 0 && res.Nodes[0].Migration != c.migrated {
				t.Errorf("the first node's migration: %q, want %q", res.Nodes[0].Migration, c.migrated)
			}
			for _, w := range c.message {
				if !strings.Contains(res.Message, w) {
					t.Errorf("the summary has no %q: %s", w, res.Message)
				}
				hist := f.history["node1"][len(f.history["node1"])-1]
				if !strings.Contains(hist, strings.ReplaceAll(w, `"`, `\"`)) {
					t.Errorf("the history's end record has no %q: %s", w, hist)
				}
			}
		})
	}
}

// TestAppUserProblem: a .deb whose unit runs as another user than the
// owner of the shared directory is refused before anything changes.
func TestAppUserProblem(t *testing.T) {
	root := t.TempDir()
	unit := filepath.Join(root, "lib/systemd/system/hello-web.service")
	if err := os.MkdirAll(filepath.Dir(unit), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unit, []byte("[Service]\nExecStart=/opt/venvs/hello-web/bin/hello-web\nUser=web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(t.TempDir(), "hello-web_2.0-1_all.deb")
	if err := debfile.WriteTree(root, deb, debfile.TreePackage{Name: "hello-web", Version: "2.0-1", Arch: "all", Maintainer: "t <t@example.org>",
		Description: "test package\n test", Compression: "gzip", MTime: time.Unix(1767225600, 0)}); err != nil {
		t.Fatal(err)
	}
	f := newFakeCluster("1.0-1")
	for _, c := range []struct {
		name, user, want string
	}{
		{"default user", "", `hello-web_2.0-1_all.deb runs hello-web.service as the user web, but the cluster gave /srv/shared/hello-web to the user hello-web; set [app] user = "web"`},
		{"[app] user agrees", "web", ""},
	} {
		inv := f.inventory(t)
		inv.Storage = &inventory.Storage{Volume: "shared", Mount: "/srv/shared", Brick: "/bricks/shared"}
		inv.App.User = c.user
		if got := appUserProblem(inv, deb); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
