package ci

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

// apply applies a unified diff made by UnifiedDiff to old.
func apply(t *testing.T, old, diff string) string {
	t.Helper()
	a := splitLines(old)
	var out []string
	next := 0 // next line of a not yet copied
	lines := splitLines(diff)
	for i := 2; i < len(lines); {
		h := lines[i]
		var as, al, bs, bl int
		if _, err := fmt.Sscanf(strings.NewReplacer(",", " ", "-", "", "+", "", "@@", "").Replace(h), "%d %d %d %d", &as, &al, &bs, &bl); err != nil {
			// Single-line ranges omit the length.
			f := strings.Fields(strings.Trim(h, "@ \n"))
			as, al = rng(f[0][1:])
			bs, bl = rng(f[1][1:])
		}
		start := as - 1
		if al == 0 {
			start = as
		}
		out = append(out, a[next:start]...)
		next = start
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "@@"); i++ {
			l := lines[i]
			switch l[0] {
			case ' ':
				out = append(out, a[next])
				next++
			case '-':
				next++
			case '+':
				out = append(out, l[1:])
			}
		}
		_ = bs
		_ = bl
	}
	out = append(out, a[next:]...)
	return strings.Join(out, "")
}

// splitLines splits s after each newline; a last line without one is kept.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func rng(s string) (int, int) {
	start, n, ok := strings.Cut(s, ",")
	a, _ := strconv.Atoi(start)
	if !ok {
		return a, 1
	}
	b, _ := strconv.Atoi(n)
	return a, b
}

func TestUnifiedDiffApplies(t *testing.T) {
	if d := UnifiedDiff("f", []byte("a\nb\n"), []byte("a\nb\n")); d != "" {
		t.Errorf("equal files: %q", d)
	}
	d := UnifiedDiff("f", []byte("a\nb\nc\n"), []byte("a\nB\nc\n"))
	if d != "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n" {
		t.Errorf("simple diff:\n%s", d)
	}
	r := rand.New(rand.NewSource(1))
	for n := 0; n < 300; n++ {
		var a []string
		for i := 0; i < r.Intn(40); i++ {
			a = append(a, fmt.Sprintf("line %d\n", r.Intn(12)))
		}
		b := append([]string(nil), a...)
		for k := 0; k < r.Intn(5); k++ {
			switch p := r.Intn(len(b) + 1); r.Intn(3) {
			case 0:
				b = append(b[:p], append([]string{fmt.Sprintf("new %d\n", k)}, b[p:]...)...)
			case 1:
				if p < len(b) {
					b = append(b[:p], b[p+1:]...)
				}
			case 2:
				if p < len(b) {
					b[p] = "changed\n"
				}
			}
		}
		old, new := strings.Join(a, ""), strings.Join(b, "")
		d := UnifiedDiff("f", []byte(old), []byte(new))
		if (d == "") != (old == new) {
			t.Fatalf("case %d: empty diff %v for equal %v", n, d == "", old == new)
		}
		if d != "" {
			if got := apply(t, old, d); got != new {
				t.Fatalf("case %d: diff does not apply:\nold:\n%s\nnew:\n%s\ndiff:\n%s\ngot:\n%s", n, old, new, d, got)
			}
		}
	}
}
