package ci

import (
	"fmt"
	"strings"
)

// UnifiedDiff returns a unified diff (3 lines of context) from old to new,
// labelled a/name and b/name, or "" when they are equal. The files it is
// used for are a few hundred lines, so a plain LCS table is fast enough and
// keeps a diff library out of the binary.
func UnifiedDiff(name string, old, new []byte) string {
	a, b := splitLines(string(old)), splitLines(string(new))
	ops := diffOps(a, b)
	if len(ops) == 0 {
		return ""
	}
	var out strings.Builder
	fromName := "a/" + name
	if old == nil {
		fromName = "/dev/null"
	}
	fmt.Fprintf(&out, "--- %s\n+++ b/%s\n", fromName, name)
	const ctx = 3
	for i := 0; i < len(ops); {
		// Find the next change and grow a hunk around it.
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-ctx, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			// A run of equal lines longer than 2*ctx ends the hunk.
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		aStart, bStart, aLen, bLen := hunkRange(ops, start, end)
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", rangeStr(aStart, aLen), rangeStr(bStart, bLen))
		for _, op := range ops[start:end] {
			out.WriteByte(op.kind)
			out.WriteString(op.line)
			if !strings.HasSuffix(op.line, "\n") {
				out.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
	return out.String()
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	line string
	ai   int // index in a (for ' ' and '-')
	bi   int // index in b (for ' ' and '+')
}

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

// diffOps is the edit script from a to b, or nil when they are equal.
func diffOps(a, b []string) []diffOp {
	n, m := len(a), len(b)
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	changed := false
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i], i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			// Deletions before insertions, as diff(1) prints them.
			ops = append(ops, diffOp{'-', a[i], i, j})
			i++
			changed = true
		default:
			ops = append(ops, diffOp{'+', b[j], i, j})
			j++
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return ops
}

func hunkRange(ops []diffOp, start, end int) (aStart, bStart, aLen, bLen int) {
	aStart, bStart = ops[start].ai, ops[start].bi
	for _, op := range ops[start:end] {
		if op.kind != '+' {
			aLen++
		}
		if op.kind != '-' {
			bLen++
		}
	}
	return aStart, bStart, aLen, bLen
}

// rangeStr formats a hunk range as diff(1) does: 1-based, and for an empty
// range the line before it.
func rangeStr(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}
