package venv

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The project's wheel is built with the interpreter's own setuptools when
// it satisfies [build-system] requires, and in pip's isolated environment
// otherwise.
func TestBuildIsolationChoice(t *testing.T) {
	needDebianPython(t, false)
	cases := []struct {
		name, requires string
		isolated       bool
	}{
		{"host setuptools suffices", `["setuptools>=61"]`, false},
		{"host too old", `["setuptools>=9999"]`, true},
		{"unknown backend package", `["setuptools>=61", "no-such-backend-helper-debship"]`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			project := t.TempDir()
			writeTree(t, project, map[string]string{
				"pyproject.toml": "[build-system]\nrequires = " + c.requires + "\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"iso\"\nversion = \"1.0\"\n",
				"iso.py":         "",
			})
			var log bytes.Buffer
			_, err := Build(context.Background(), Options{
				ProjectDir: project, VenvDir: "/opt/venvs/iso", StageRoot: t.TempDir(), NoIndex: true, Log: &log,
			})
			isolated := strings.Contains(log.String(), "isolated wheel build")
			if isolated != c.isolated {
				t.Errorf("isolated = %v, want %v; log:\n%s", isolated, c.isolated, log.String())
			}
			// Offline, an isolated build cannot find what the host lacks.
			if (err != nil) != c.isolated {
				t.Errorf("err = %v", err)
			}
		})
	}
}
