// Package inventorytest gives tests an inventory the way a user's reaches
// debship: a cluster.toml file, read by inventory.Load (defaults, checks,
// paths relative to the file). The inventory package's own tests cannot
// import it (an import cycle) and write their files themselves.
package inventorytest

import (
	"os"
	"path/filepath"
	"testing"

	"gitlab.com/debship/debship/cluster/inventory"
)

// Write writes doc as dir/cluster.toml and returns its path; files a test
// puts beside it (keys, secrets) are found as a user's would be.
func Write(t testing.TB, dir, doc string) string {
	t.Helper()
	p := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Load is Write, then inventory.Load; an inventory that does not load
// fails the test.
func Load(t testing.TB, dir, doc string) *inventory.Inventory {
	t.Helper()
	return load(t, Write(t, dir, doc))
}

// Reload writes inv to a cluster.toml in a new temporary directory and
// loads it again: what a test set in the struct is checked, and read as
// from a user's file.
func Reload(t testing.TB, inv *inventory.Inventory) *inventory.Inventory {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.toml")
	if err := inv.Write(p); err != nil {
		t.Fatal(err)
	}
	return load(t, p)
}

func load(t testing.TB, p string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}
