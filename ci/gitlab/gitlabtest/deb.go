package gitlabtest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"gitlab.com/debship/debship/debbuild/debfile"
)

// MakeDeb writes a small real .deb of package name at version-revision in
// dir, written by debship's own writer, with payload as its one file:
// release and the webhook read the name and version back from it, and a
// different payload gives different bytes (a different checksum).
func MakeDeb(t testing.TB, dir, name, version, revision, payload string) string {
	t.Helper()
	root := filepath.Join(dir, "root-"+name+"-"+version+"-"+revision)
	doc := filepath.Join(root, "usr/share/doc", name)
	if err := os.MkdirAll(doc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(doc, "payload"), []byte(payload), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, debfile.FileName(name, version+"-"+revision, "all"))
	err := debfile.WriteTree(root, p, debfile.TreePackage{
		Name: name, Version: version + "-" + revision, Arch: "all", Section: "web", Priority: "optional",
		Maintainer: "Test <test@example.org>", Description: "test package\ntest package",
		Compression: "gzip", MTime: time.Unix(1700000000, 0).UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	return p
}
