package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing.deb")
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"debship", "--help"}, 0},
		{"unknown flag", []string{"debship", "build", "--no-such-flag"}, exitUsage},
		{"too many args", []string{"debship", "build", "a", "b"}, exitUsage},
		{"inspect without file", []string{"debship", "inspect"}, exitUsage},
		{"inspect missing file", []string{"debship", "inspect", missing}, exitFailure},
		{"build without pyproject", []string{"debship", "build", t.TempDir()}, exitFailure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := run(c.args); got != c.want {
				t.Errorf("%v: exit %d, want %d", c.args, got, c.want)
			}
		})
	}
}

// Every command and subcommand has help text and answers --help with 0.
func TestHelpEverywhere(t *testing.T) {
	app := newApp()
	var walk func(prefix []string, cmds []*cli.Command)
	walk = func(prefix []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Name == "help" {
				continue // urfave/cli's own
			}
			path := append(append([]string{}, prefix...), c.Name)
			if strings.TrimSpace(c.Usage) == "" {
				t.Errorf("%s has no Usage", strings.Join(path, " "))
			}
			if len(c.Subcommands) == 0 && strings.TrimSpace(c.Description) == "" {
				t.Errorf("%s has no Description", strings.Join(path, " "))
			}
			for _, f := range c.Flags {
				if u, ok := f.(cli.DocGenerationFlag); ok && strings.TrimSpace(u.GetUsage()) == "" {
					t.Errorf("%s: flag %s has no usage text", strings.Join(path, " "), f.Names()[0])
				}
			}
			args := append(append([]string{"debship"}, path...), "--help")
			devnull, _ := os.Open(os.DevNull)
			old := os.Stdout
			os.Stdout = devnull
			code := run(args)
			os.Stdout = old
			if code != 0 {
				t.Errorf("%v: exit %d", args, code)
			}
			walk(path, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
}

func TestInterspersedFlags(t *testing.T) {
	app := newApp()
	got := interspersed(app, []string{"debship", "build", "../app", "--output", "/tmp/out", "--find-links", "./w", "--no-index", "--revision=2"})
	want := []string{"debship", "build", "--output", "/tmp/out", "--find-links", "./w", "--no-index", "--revision=2", "../app"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("interspersed = %q\nwant %q", got, want)
	}
	// A command line run on a node keeps its own flags.
	got = interspersed(app, []string{"debship", "lab", "ssh", "node1", "ls", "-l", "/"})
	want = []string{"debship", "lab", "ssh", "node1", "ls", "-l", "/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("interspersed = %q\nwant %q", got, want)
	}
}
