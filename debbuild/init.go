package debbuild

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gitlab.com/debship/debship/internal/atomicfile"
	"gitlab.com/debship/debship/templates"
)

var toolTableRE = regexp.MustCompile(`(?m)^\s*\[\[?\s*tool\.debship[\].]`)

// Init appends a commented [tool.debship] table to dir/pyproject.toml and
// leaves every other byte of the file as it was.
func Init(dir string) (string, error) {
	file := filepath.Join(dir, "pyproject.toml")
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("init: %w (run debship init in a Python project directory)", err)
	}
	if toolTableRE.Match(data) {
		return "", fmt.Errorf("%s already has a [tool.debship] table; edit it by hand (see README: Configuration)", file)
	}
	spec, err := LoadSpec(dir, Overrides{})
	if err != nil {
		return "", err
	}
	first := spec.Package
	if len(spec.ProjectScripts) > 0 {
		first = spec.ProjectScripts[0]
	}
	var quoted []string
	for _, s := range spec.Scripts {
		quoted = append(quoted, fmt.Sprintf("%q", s))
	}
	version := spec.Version
	if spec.DynamicVersion {
		version = "<from the build backend>"
	}
	block, err := templates.Render("init/tool-debship.toml", map[string]any{
		"Package": spec.Package, "Version": version, "Maintainer": spec.Maintainer,
		"Description": spec.Description, "Homepage": spec.Homepage,
		"Scripts": strings.Join(quoted, ", "), "FirstScript": first,
	})
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	out.Write(data)
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		out.WriteByte('\n')
	}
	out.Write(block)
	st, err := os.Stat(file)
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(file, out.Bytes(), st.Mode().Perm()); err != nil {
		return "", fmt.Errorf("init: write %s: %w", file, err)
	}
	return file, nil
}
