// Package shtest is a test helper: it checks with a real POSIX shell parser
// (mvdan.cc/sh) that a value from a configuration file stays one literal
// word in a command or script, so no shell ever interprets it. The tests of
// the packages that build commands (cluster/setup, cluster/deploy,
// debbuild) feed it the hostile values of Hostile.
package shtest

import (
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Hostile are values that a shell would interpret if they reached it
// unquoted: quotes, command separators, command substitutions (with and
// without white space, which URL paths refuse), white
// space, a newline, a leading '-' (an option), non-ASCII text, "..", glob
// and redirection characters, a backslash, '~' and '#'. Each carries the
// marker "hx" so that it cannot be confused with the rest of a command.
var Hostile = []string{
	`hx'q`,
	`hx"q`,
	`hx;touch /tmp/hx-pwned`,
	`hx$(touch /tmp/hx-pwned)`,
	"hx`touch /tmp/hx-pwned`",
	`hx${HOME}`,
	`hx;id`,
	`hx$(id)`,
	`hx&&id`,
	`hx space`,
	"hx\ttab",
	"hx\nnewline",
	`-hxdash`,
	`hxé`,
	`hx/../..`,
	`hx\back`,
	`hx*`,
	`hx|cat&`,
	`hx>out`,
	`~hx`,
	`hx#c`,
}

// Literal checks every occurrence of value in script, a command or a
// shell script: the script must parse as POSIX sh, and each occurrence
// must lie inside one word made only of literal text (unquoted characters
// without glob or tilde meaning, single quotes, double quotes without
// expansions), not at the start of the word when value starts with '-'.
// It reports whether value occurs at all.
func Literal(script, value string) (bool, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(script), "")
	if err != nil {
		if strings.Contains(script, value) {
			return true, fmt.Errorf("with %q the script does not parse as sh (%v):\n%s", value, err, script)
		}
		return false, fmt.Errorf("the script does not parse as sh (%v):\n%s", err, script)
	}
	type span struct{ start, end int }
	var literal []span
	found := false
	var problem error
	syntax.Walk(f, func(n syntax.Node) bool {
		w, ok := n.(*syntax.Word)
		if !ok || problem != nil {
			return problem == nil
		}
		text, lit := Cook(w)
		if !strings.Contains(text, value) {
			return true
		}
		found = true
		switch {
		case !lit:
			problem = fmt.Errorf("%q is part of a word with expansions or glob characters, which the shell interprets: %s", value, script)
		case strings.HasPrefix(value, "-") && strings.HasPrefix(text, value):
			problem = fmt.Errorf("%q starts a word, which the command reads as an option: %s", value, script)
		default:
			literal = append(literal, span{int(w.Pos().Offset()), int(w.End().Offset())})
		}
		return true
	})
	if problem != nil {
		return true, problem
	}
	// An occurrence in the source outside the literal words that hold the
	// value was split, commented out, unescaped or expanded by the shell.
	for i := 0; ; {
		j := strings.Index(script[i:], value)
		if j < 0 {
			break
		}
		start := i + j
		found = true
		inside := false
		for _, s := range literal {
			if s.start <= start && start+len(value) <= s.end {
				inside = true
				break
			}
		}
		if !inside {
			return true, fmt.Errorf("%q is not inside one literal word of the script:\n%s", value, script)
		}
		i = start + 1
	}
	return found, nil
}

// Cook returns the text a word stands for, with every expansion replaced
// by NUL, and whether it is literal text only.
func Cook(w *syntax.Word) (string, bool) {
	var b strings.Builder
	lit := true
	for i, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			if strings.ContainsAny(unescapedGlob(p.Value), "*?[") || (i == 0 && strings.HasPrefix(p.Value, "~")) {
				lit = false
			}
			b.WriteString(unescape(p.Value, ""))
		case *syntax.SglQuoted:
			if p.Dollar {
				lit = false
			}
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			if p.Dollar {
				lit = false
			}
			for _, q := range p.Parts {
				if l, ok := q.(*syntax.Lit); ok {
					b.WriteString(unescape(l.Value, "$`\"\\\n"))
				} else {
					lit = false
					b.WriteByte(0)
				}
			}
		default:
			lit = false
			b.WriteByte(0)
		}
	}
	return b.String(), lit
}

// unescape removes the backslashes the shell removes: before any character
// outside quotes (only), inside double quotes only before those of special.
func unescape(s, special string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (special == "" || strings.IndexByte(special, s[i+1]) >= 0) {
			i++
			if s[i] == '\n' {
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unescapedGlob is s without its backslash-escaped characters.
func unescapedGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
