// Package templates holds every text file debship generates, embedded, one
// file per artefact, so that each can be reviewed as the shell script, unit
// file or YAML it is.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed all:files
var files embed.FS

// Raw returns an embedded file as it is.
func Raw(name string) ([]byte, error) {
	b, err := files.ReadFile("files/" + name)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return b, nil
}

var funcs = template.FuncMap{
	"join":  strings.Join,
	"quote": shellQuote,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"trim":  strings.TrimSpace,
	"roff":  roffEscape,
}

// Render executes the embedded template name with data.
func Render(name string, data any) ([]byte, error) {
	b, err := Raw(name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", name, err)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return nil, fmt.Errorf("render template %s: %w", name, err)
	}
	return out.Bytes(), nil
}

// shellQuote quotes s for POSIX sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// roffEscape makes s safe as text in a man page: backslashes and hyphens
// are escaped, and a leading dot or quote cannot start a request.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
