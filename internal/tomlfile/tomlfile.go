// Package tomlfile is how debship reads its TOML files (pyproject.toml's
// [tool.debship], cluster.toml, webhook.toml): strictly, with every mistake
// reported as one sentence "file:line: what; fix".
package tomlfile

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Lines maps every key and table of a (syntactically valid) document to its
// line: "name", "ssh", "ssh.port", "node.0", "node.0.name" … Array tables
// get their index, so a message about the second [[node]] points at it.
func Lines(doc []byte) map[string]int {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(doc)
	counts := map[string]int{}
	table := ""
	keyOf := func(it unstable.Iterator) (string, int) {
		var parts []string
		line := 0
		for it.Next() {
			n := it.Node()
			if line == 0 {
				line = p.Shape(n.Raw).Start.Line
			}
			parts = append(parts, string(n.Data))
		}
		return strings.Join(parts, "."), line
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			k, l := keyOf(e.Key())
			table = k
			lines[table] = l
		case unstable.ArrayTable:
			k, l := keyOf(e.Key())
			table = k + "." + strconv.Itoa(counts[k])
			counts[k]++
			lines[table] = l
		case unstable.KeyValue:
			k, l := keyOf(e.Key())
			if table != "" {
				k = table + "." + k
			}
			if _, seen := lines[k]; !seen {
				lines[k] = l
			}
		}
	}
	return lines
}

// Hint may replace the message about an unknown key (e.g. a secret that
// must not be inline); "" keeps the standard one.
type Hint func(key []string) string

// Options shape the messages of Error.
type Options struct {
	SeeAlso string // where the keys are documented, e.g. "README: Configuration"
	Hint    Hint
	// Keep selects the unknown keys that are errors (nil: all). A file
	// shared with other tools, like pyproject.toml, is strict only in its
	// own table.
	Keep func(key []string) bool
}

var decodeTypeError = regexp.MustCompile(`^cannot decode TOML (\w+) into struct field .* of type (\S+)$`)

// Error turns the error of a strict decode of the file at path into one
// sentence per problem, naming the file and the line. It returns nil when
// Options.Keep filters out every unknown key.
func Error(path string, err error, o Options) error {
	see := ""
	if o.SeeAlso != "" {
		see = " (see " + o.SeeAlso + ")"
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []error
		for _, e := range strict.Errors {
			key := e.Key()
			if o.Keep != nil && !o.Keep(key) {
				continue
			}
			line, _ := e.Position()
			var msg string
			if o.Hint != nil {
				msg = o.Hint(key)
			}
			if msg == "" {
				name := key[len(key)-1]
				switch {
				case strings.HasSuffix(e.Error(), "missing table"):
					msg = fmt.Sprintf("unknown table [%s]; remove it or check the spelling%s", strings.Join(key, "."), see)
				case len(key) == 1:
					msg = fmt.Sprintf("unknown key %q at the top level; remove it or check the spelling%s", name, see)
				default:
					msg = fmt.Sprintf("unknown key %q in [%s]; remove it or check the spelling%s", name, strings.Join(key[:len(key)-1], "."), see)
				}
			}
			errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, msg))
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if m := decodeTypeError.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("%s:%d: %s must be %s, not %s; fix the value%s", path, line, strings.Join(de.Key(), "."), goTypeName(m[2]), tomlTypeName(m[1]), see)
		}
		return fmt.Errorf("%s:%d:%d: TOML syntax error: %s; fix the file", path, line, col, msg)
	}
	return fmt.Errorf("%s: %w", path, err)
}

func goTypeName(t string) string {
	t = strings.TrimPrefix(t, "*")
	switch {
	case t == "string":
		return "a string in quotes"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "[]string":
		return "a list of strings such as [\"a\", \"b\"]"
	case strings.HasPrefix(t, "[]"):
		return "a list (or an array of tables [[...]])"
	default:
		return "a table ([...])"
	}
}

func tomlTypeName(t string) string {
	switch t {
	case "integer", "array", "inline":
		return "an " + t
	default:
		return "a " + t
	}
}
