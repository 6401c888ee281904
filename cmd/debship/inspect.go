package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/debbuild/inspect"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show what a .deb holds: control, scripts, units, conffiles, files",
		ArgsUsage: "PACKAGE.deb",
		Description: `Reads any .deb (not only debship's) and prints its control fields,
maintainer scripts, conffiles, systemd units and file tree.

It says which Debian release the package was built for, from the suffix
of its version (1.4-1+deb13u1: debian-13), and its mode: "cluster" (the
units are installed only, pacemaker runs them) or "systemd" (the postinst
enables and starts them, which debship deploy and cluster apply refuse),
from its X-Debship-Mode field, else from what its postinst does.

With --check it also verifies that the md5sums match the files, that scripts
inside a virtualenv run the virtualenv's own interpreter, and that no build
path leaked into any file, and runs the lintian of the package's release:
the host's when the host is that release, else the one in that release's
cached build root (as root). It exits 1 if a check fails.

Examples:
   debship inspect dist/hello-web_1.4-1+deb13u1_all.deb
   debship inspect --check --json dist/hello-web_1.4-1+deb12u1_all.deb`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.BoolFlag{Name: "check", Usage: "run the checks; exit 1 if one fails"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("inspect takes one PACKAGE.deb")
			}
			p, err := inspect.ReadPackage(c.Args().First())
			if err != nil {
				return err
			}
			var checks []inspect.CheckResult
			if c.Bool("check") {
				checks = append(p.Check(), p.Lintian(c.Context))
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					*inspect.Package
					Checks []inspect.CheckResult `json:"checks,omitempty"`
				}{p, checks}); err != nil {
					return err
				}
			} else {
				printPackage(p, checks)
			}
			for _, ch := range checks {
				if !ch.OK {
					return fmt.Errorf("%s: check failed: %s", p.File, ch.Name)
				}
			}
			return nil
		},
	}
}

func printPackage(p *inspect.Package, checks []inspect.CheckResult) {
	fmt.Printf("%s (format %s: %s)\n", p.File, p.Format, strings.Join(p.Members, ", "))
	target := p.Target
	if target == "" {
		target = "none named by the version"
	}
	fmt.Printf("built for: %s\n", target)
	fmt.Printf("mode: %s\n\n", inspect.ModeSentence(p.Mode))
	for _, f := range p.Control {
		fmt.Printf("%s: %s\n", f.Name, f.Value)
	}
	names := func(m map[string]string) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	fmt.Printf("\nconffiles:\n")
	for _, c := range p.Conffiles {
		fmt.Printf("  %s\n", c)
	}
	for _, n := range names(p.Scripts) {
		fmt.Printf("\n--- %s ---\n%s", n, p.Scripts[n])
	}
	for _, n := range names(p.Units) {
		fmt.Printf("\n--- unit %s ---\n%s", n, p.Units[n])
	}
	fmt.Printf("\nfiles (%d):\n", len(p.Files))
	for _, e := range p.Files {
		line := fmt.Sprintf("  %s %s %8d %s", e.Mode, e.Owner, e.Size, e.Path)
		if e.Target != "" {
			line += " -> " + e.Target
		}
		if e.Conffile {
			line += " [conffile]"
		}
		fmt.Println(line)
	}
	if len(checks) > 0 {
		fmt.Printf("\nchecks:\n")
		for _, ch := range checks {
			mark := "ok  "
			switch {
			case !ch.OK:
				mark = "FAIL"
			case ch.Skipped:
				mark = "skip"
			}
			fmt.Printf("  %s %s\n", mark, ch.Name)
			for _, pr := range ch.Problems {
				fmt.Printf("       %s\n", pr)
			}
		}
	}
}
