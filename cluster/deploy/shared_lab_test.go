package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/lab/labtest"
	"gitlab.com/debship/debship/cluster/progress"
	"gitlab.com/debship/debship/cluster/setup"
	"gitlab.com/debship/debship/internal/testlog"
)

// migrateScript is the test app's migration: it records each run (version,
// node, user, working directory) on the shared file system; the version
// "fail" prints an error and exits 3 after recording.
const migrateScript = `import os, sys
from . import __version__

def main():
    path = os.path.join(os.environ["DEBSHIP_SHARED_DIR"], "migrations.log")
    with open(path, "a") as f:
        f.write(f"{__version__} {os.uname().nodename} uid={os.getuid()} cwd={os.getcwd()} args={' '.join(sys.argv[1:])}\n")
    if __version__.startswith("3."):
        print("Applying 0003_drop_column...", flush=True)
        print("sqlite3.OperationalError: no such table: shop_item", file=sys.stderr, flush=True)
        return 3
    print(f"migrated to {__version__}", flush=True)
    return 0
`

// buildWithMigration is the example app with [tool.debship] migrate.
func buildWithMigration(t *testing.T, version string) string {
	return labtest.BuildExample(t, labtest.Release(t), version, func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "src/hello_web/migrate.py"), []byte(migrateScript), 0o644); err != nil {
			t.Fatal(err)
		}
		py := filepath.Join(dir, "pyproject.toml")
		labtest.ReplaceIn(t, py, "[project.scripts]\n", "[project.scripts]\nhello-web-migrate = \"hello_web.migrate:main\"\n")
		labtest.ReplaceIn(t, py, "[tool.debship]\n", "[tool.debship]\nmigrate = \"hello-web-migrate --noinput\"\n")
	})
}

func (e *labEnv) vipURL(path string) string {
	return fmt.Sprintf("http://%s:%d%s", e.inv.FloatingPrefix().Addr(), e.inv.App.Port, path)
}

func httpDo(method, url string, body []byte) (int, string, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestSharedDirAndMigrationsLab: the app's own directory on the shared
// file system (one uid on every node although the nodes would allocate
// different ones, written through the floating IP, read on the other node,
// kept through a failover) and its migrations (once at the first install,
// on one node, before the app started; once per deploy, as the
// service's user, none for a refused deploy, a failing one rolled back
// without a failed request, once per rollback with the command of the
// version brought back, none with --skip-migrate).
func TestSharedDirAndMigrationsLab(t *testing.T) {
	v1 := buildWithMigration(t, "1.0.0")
	v2 := buildWithMigration(t, "2.0.0")
	v3 := buildWithMigration(t, "3.0.0")
	other := makeDeb(t, "other-app", "2.0-1")

	l := labtest.Fresh(t, 2)
	inv, _ := labtest.Inventory(t, l)
	e := &labEnv{t: t, l: l, inv: inv}
	ctx := context.Background()
	const log = "/srv/shared/hello-web/migrations.log"
	migrations := func(t *testing.T) int { return atoi(labtest.Sh(t, e.inv, "node1", "cat "+log+" 2>/dev/null | wc -l")) }
	// since is what the migrations recorded after the first n runs, read
	// on node.
	since := func(t *testing.T, node string, n int) string {
		return labtest.Sh(t, e.inv, node, "tail -n +"+fmt.Sprint(n+1)+" "+log)
	}
	// ranAsApp is the line a migration of version records on node.
	ranAsApp := func(t *testing.T, version, node string) string {
		return fmt.Sprintf("%s %s uid=%s cwd=/var/lib/hello-web args=--noinput", version, node, labtest.Sh(t, e.inv, node, "id -u hello-web"))
	}

	// node2's system ids are shifted: the top of the range is taken, and
	// adduser's next pick is another one than node1's.
	taken := labtest.Sh(t, e.inv, "node2", `n=999; while getent passwd $n >/dev/null || getent group $n >/dev/null; do n=$((n-1)); done
addgroup --system --gid $n shift-top >/dev/null && adduser --system --uid $n --ingroup shift-top --no-create-home shift-top >/dev/null &&
adduser --system --group --no-create-home shift-low >/dev/null && echo $n`)
	t.Logf("node2: the system id %s and adduser's next one are taken", taken)
	start := time.Now()
	apply := func() *setup.Report {
		rep, err := setup.Apply(ctx, inv, inventory.ConnectOptions{}, setup.Options{Package: v1, Progress: setup.TextProgress(testlog.Writer(t), testlog.Writer(t))})
		if err != nil {
			t.Fatalf("cluster apply --package v1: %v", err)
		}
		return rep
	}
	apply()
	t.Logf("cluster set up with hello-web 1.0-1 in %s", time.Since(start).Round(100*time.Millisecond))
	labtest.WaitServing(t, e.inv, 2*time.Minute)
	if rep := apply(); len(rep.Changes) != 0 {
		t.Errorf("second apply changed: %+v", rep.Changes)
	}

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"the first install migrated once, on node1, as the app, before the app started", func(t *testing.T) {
			if got, want := since(t, "node1", 0), ranAsApp(t, "1.0.0", "node1"); got != want {
				t.Errorf("migrations of cluster apply --package:\n%s\nwant one line %q", got, want)
			}
			migrated := atoi(labtest.Sh(t, e.inv, "node1", "stat -c %Y "+log))
			for _, n := range []string{"node1", "node2"} {
				started := atoi(labtest.Sh(t, e.inv, n, `date -d "$(systemctl show -p ActiveEnterTimestamp --value hello-web.service)" +%s`))
				if started < migrated {
					t.Errorf("the app started on %s at %d, before the migration ended at %d", n, started, migrated)
				}
			}
		}},
		{"one uid on every node, the directory is the app's", func(t *testing.T) {
			want := labtest.Sh(t, e.inv, "node1", "id -u hello-web; id -g hello-web; stat -c '%U:%G %a %u' /srv/shared/hello-web")
			got := labtest.Sh(t, e.inv, "node2", "id -u hello-web; id -g hello-web; stat -c '%U:%G %a %u' /srv/shared/hello-web")
			t.Logf("node1: %q node2: %q", want, got)
			if got != want || !strings.Contains(want, "hello-web:hello-web 750") || strings.HasPrefix(want, taken+"\n") {
				t.Errorf("hello-web on node1: %q, on node2: %q; want the same uid (not node2's taken %s), hello-web:hello-web 750", want, got, taken)
			}
		}},
		{"written through the floating IP, read on the other node, kept through a failover", func(t *testing.T) {
			st := labtest.WaitServing(t, e.inv, time.Minute)
			holder, other := st.IPHolder, "node1"
			if holder == "node1" {
				other = "node2"
			}
			if code, body, err := httpDo("PUT", e.vipURL("/shared/upload.txt"), []byte("uploaded via "+holder)); err != nil || code != 201 {
				t.Fatalf("PUT through the floating IP: %d %q %v", code, body, err)
			}
			for _, n := range []string{holder, other} {
				if out := labtest.Sh(t, e.inv, n, "stat -c %U /srv/shared/hello-web/upload.txt; cat /srv/shared/hello-web/upload.txt"); out != "hello-web\nuploaded via "+holder {
					t.Errorf("on %s: %q, want owner hello-web and the upload", n, out)
				}
			}
			if err := l.Crash(ctx, holder); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Minute)
			var code int
			var body string
			for time.Now().Before(deadline) {
				var err error
				if code, body, err = httpDo("GET", e.vipURL("/shared/upload.txt"), nil); err == nil && code == 200 {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if code != 200 || body != "uploaded via "+holder {
				t.Errorf("after %s crashed: GET through the floating IP: %d %q", holder, code, body)
			}
			if code, body, err := httpDo("PUT", e.vipURL("/shared/after.txt"), []byte("after the failover")); err != nil || code != 201 {
				t.Errorf("PUT after the failover: %d %q %v", code, body, err)
			}
			if err := l.Start(ctx, holder); err != nil {
				t.Fatal(err)
			}
			labtest.WaitServing(t, e.inv, 3*time.Minute)
			// Gluster heals the restarted node's brick; its mount reads the volume.
			deadline = time.Now().Add(time.Minute)
			for out := ""; out != "hello-web after the failover"; time.Sleep(time.Second) {
				out = strings.Join(strings.Fields(labtest.Sh(t, e.inv, holder, "stat -c %U /srv/shared/hello-web/after.txt 2>&1; cat /srv/shared/hello-web/after.txt 2>&1")), " ")
				if time.Now().After(deadline) {
					t.Fatalf("on %s after its restart: %q", holder, out)
				}
			}
		}},
		{"deploy v2 under load: its migration runs once, as the app, before traffic", func(t *testing.T) {
			st := labtest.WaitServing(t, e.inv, time.Minute)
			before := migrations(t)
			o := e.options(t, v2)
			var shown string
			o.Progress = watcher{o.Progress, func(ev progress.Event) {
				if ev.Step == "migrate" && ev.Status == progress.StatusOK {
					shown = ev.Message
				}
			}}
			res, err := e.runUnderLoad(t, o, 1500, "deploy v2 with a migration")
			if err != nil {
				t.Fatalf("deploy v2: %v", err)
			}
			if shown != "done: migrated to 2.0.0" {
				t.Errorf("the migrate step showed %q, want the migration's last line", shown)
			}
			lines := since(t, "node2", before)
			first := res.Nodes[0].Node
			want := ranAsApp(t, "2.0.0", first)
			if lines != want || first == st.IPHolder {
				t.Errorf("migration runs during the deploy:\n%s\nwant one line %q (the first node, not the IP holder %s)", lines, want, st.IPHolder)
			}
			if res.Nodes[0].Migration != MigrationRan || res.Nodes[1].Migration != "" {
				t.Errorf("migration per node: %q %q", res.Nodes[0].Migration, res.Nodes[1].Migration)
			}
			e.expectVersion(t, built(t, "2.0-1"), "2.0.0")
		}},
		{"a refused deploy runs no migration", func(t *testing.T) {
			before := labtest.Sh(t, e.inv, "node1", "cat "+log)
			_, err := Run(ctx, e.options(t, other))
			var pe *PreflightError
			if !errors.As(err, &pe) {
				t.Fatalf("want a preflight error, got %v", err)
			}
			if after := labtest.Sh(t, e.inv, "node1", "cat "+log); after != before {
				t.Errorf("the migration ran for a refused deploy:\n%s", after)
			}
		}},
		{"a failing migration: the node goes back to v2, no request fails", func(t *testing.T) {
			labtest.WaitServing(t, e.inv, time.Minute)
			before := migrations(t)
			res, err := e.runUnderLoad(t, e.options(t, v3), 1000, "deploy v3 (failing migration, rolled back)")
			var de *Error
			if !errors.As(err, &de) || res.Outcome != OutcomeRolledBack {
				t.Fatalf("want a rolled-back deploy, got %v", err)
			}
			t.Logf("v3: %v", err)
			for _, w := range []string{"the migration (hello-web-migrate.service) exited with status 3", "sqlite3.OperationalError: no such table: shop_item", "was rolled back to " + built(t, "2.0-1")} {
				if !strings.Contains(res.Message, w) {
					t.Errorf("the summary has no %q", w)
				}
			}
			if n := migrations(t) - before; n != 1 {
				t.Errorf("the failing migration ran %d times", n)
			}
			e.expectVersion(t, built(t, "2.0-1"), "2.0.0")
			labtest.WaitServing(t, e.inv, time.Minute)
			_, text := e.history(t)
			if !strings.Contains(text, "sqlite3.OperationalError: no such table: shop_item") {
				t.Errorf("cluster history has no migration output:\n%s", text)
			}
		}},
		{"rollback runs the migration of the version it brings back, once", func(t *testing.T) {
			labtest.WaitServing(t, e.inv, time.Minute)
			before := migrations(t)
			o := e.options(t, "")
			o.Kind = KindRollback
			res, err := e.runUnderLoad(t, o, 1500, "rollback with a migration")
			if err != nil {
				t.Fatalf("rollback: %v", err)
			}
			if res.Version != built(t, "1.0-1") {
				t.Fatalf("the rollback brought back %s, want %s", res.Version, built(t, "1.0-1"))
			}
			lines := since(t, "node1", before)
			if want := ranAsApp(t, "1.0.0", res.Nodes[0].Node); lines != want {
				t.Errorf("migrations during the rollback:\n%s\nwant one line %q (1.0's own command, on the first node)", lines, want)
			}
			if res.Nodes[0].Migration != MigrationRan || res.Nodes[1].Migration != "" {
				t.Errorf("migration per node: %q %q", res.Nodes[0].Migration, res.Nodes[1].Migration)
			}
			e.expectVersion(t, built(t, "1.0-1"), "1.0.0")
		}},
		{"--skip-migrate: v2 deployed, its migration not run", func(t *testing.T) {
			labtest.WaitServing(t, e.inv, time.Minute)
			before := migrations(t)
			o := e.options(t, v2)
			o.SkipMigrate = true
			res, err := e.runUnderLoad(t, o, 1500, "deploy v2 --skip-migrate")
			if err != nil {
				t.Fatalf("deploy v2 --skip-migrate: %v", err)
			}
			if n := migrations(t); n != before {
				t.Errorf("the migration ran with --skip-migrate:\n%s", since(t, "node1", before))
			}
			if res.Nodes[0].Migration != MigrationSkipped {
				t.Errorf("the first node's migration is %q, want %q", res.Nodes[0].Migration, MigrationSkipped)
			}
			e.expectVersion(t, built(t, "2.0-1"), "2.0.0")
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			t.FailNow()
		}
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(strings.TrimSpace(s), &n)
	return n
}
