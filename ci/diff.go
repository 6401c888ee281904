package ci

import udiff "github.com/aymanbagabas/go-udiff"

// UnifiedDiff returns a unified diff (3 lines of context) from old to new,
// labelled a/name and b/name (/dev/null for a file that does not exist
// yet: old == nil), or "" when they are equal. patch -p1 applies it.
func UnifiedDiff(name string, old, new []byte) string {
	from := "a/" + name
	if old == nil {
		from = "/dev/null"
	}
	return udiff.Unified(from, "b/"+name, string(old), string(new))
}
