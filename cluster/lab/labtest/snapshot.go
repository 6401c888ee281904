package labtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/cluster/lab"
	"gitlab.com/debship/debship/cluster/setup"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/testlog"
)

// AppliedVersion is the example app's version on an Applied lab: the
// version the deploy tests start from.
const AppliedVersion = "1.0.0"

// Applied returns a lab of the given release and size on which cluster
// apply has run with Inventory's settings and the example app at
// AppliedVersion, serving on every node. It is brought back from a lab
// snapshot in seconds; the first test that asks makes the snapshot (boot,
// apply, save), and it serves every later test of any package until the
// code changes (the snapshot's name carries a digest of debship's sources,
// templates and the example). Tests of the apply itself use Fresh.
func Applied(t *testing.T, nodes int, r debian.Release) *lab.Lab {
	t.Helper()
	name := appliedName(t, nodes, r)
	if s, err := lab.OpenSnapshot(Dir, name); err == nil && s.Fits() {
		l := get(t, getOptions{nodes: nodes, release: r, snapshot: name})
		waitServing(t, l)
		return l
	}
	deb := BuildExample(t, r, AppliedVersion, nil)
	l := get(t, getOptions{nodes: nodes, release: r, fresh: true})
	lockedLab(func() { reusable = false }) // applied: Get boots a pristine one
	inv, _ := Inventory(t, l)
	start := time.Now()
	rep, err := setup.Apply(context.Background(), inv, inventory.ConnectOptions{}, setup.Options{Package: deb})
	if err != nil {
		t.Fatalf("labtest: cluster apply for the snapshot %s: %v", name, err)
	}
	t.Logf("labtest: cluster apply --package %s: %d changes in %s", filepath.Base(deb), len(rep.Changes), time.Since(start).Round(100*time.Millisecond))
	waitServing(t, l)
	removeStaleSnapshots(t, name)
	lockedLab(func() {
		l.SetProgress(testlog.Writer(t))
		defer l.SetProgress(nil)
		if _, err = l.SaveSnapshot(context.Background(), name, true); err != nil {
			t.Fatalf("labtest: %v", err)
		}
	})
	return l
}

// waitServing waits until the lab's cluster serves on every node.
func waitServing(t *testing.T, l *lab.Lab) {
	t.Helper()
	inv, _ := Inventory(t, l)
	start := time.Now()
	WaitServing(t, inv, 3*time.Minute)
	t.Logf("labtest: cluster serving after %s", time.Since(start).Round(100*time.Millisecond))
}

// appliedName is the snapshot of an applied lab of this shape and of this
// code: test-<release>-<nodes>n-<digest>.
func appliedName(t *testing.T, nodes int, r debian.Release) string {
	t.Helper()
	d, err := digestOnce()
	if err != nil {
		t.Fatalf("labtest: digest of the sources: %v", err)
	}
	return fmt.Sprintf("%s%s-%dn-%s", appliedPrefix, r.Suite, nodes, d)
}

const appliedPrefix = "test-"

// removeStaleSnapshots deletes the test snapshots of older code, so that
// they do not pile up on a developer's machine.
func removeStaleSnapshots(t *testing.T, keep string) {
	t.Helper()
	ss, err := lab.ListSnapshots(Dir)
	if err != nil {
		t.Fatalf("labtest: %v", err)
	}
	digest := keep[strings.LastIndexByte(keep, '-')+1:]
	for _, s := range ss {
		if strings.HasPrefix(s.Name, appliedPrefix) && !strings.HasSuffix(s.Name, "-"+digest) {
			if err := lab.RemoveSnapshot(context.Background(), Dir, s.Name); err != nil {
				t.Fatalf("labtest: %v", err)
			}
		}
	}
}

var digestOnce = sync.OnceValues(func() (string, error) {
	return treeDigest(moduleRoot())
})

// treeDigest hashes what decides how a cluster is applied: every non-test
// Go file of the module, go.mod and go.sum, templates/ and the example app.
func treeDigest(root string) (string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "dist" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go"),
			rel == "go.mod", rel == "go.sum",
			strings.HasPrefix(rel, "templates/"),
			strings.HasPrefix(rel, "examples/hello-web/"):
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00", f)
		r, err := os.Open(filepath.Join(root, f))
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return "", err
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
