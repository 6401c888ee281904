// Command debship carries a Python web project from pyproject.toml to a
// rolling install on a small Debian HA cluster. This package only wires flags
// to the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// Exit codes: 0 ok, 1 the command failed, 2 the command line was wrong.
const (
	exitFailure = 1
	exitUsage   = 2
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

// commands are debship's top-level commands, one file each, in the order
// --help lists them.
func commands() []*cli.Command {
	return []*cli.Command{
		buildCommand(),
		ciCommand(),
		clusterCommand(),
		deployCommand(),
		initCommand(),
		inspectCommand(),
		labCommand(),
		releaseCommand(),
		rollbackCommand(),
		shipCommand(),
		webhookCommand(),
	}
}

// usageError marks an error as a mistake on the command line (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func newApp() *cli.App {
	commands := commands()
	markUsageErrors(commands)
	return &cli.App{
		Name:    "debship",
		Usage:   "ship a Python web project as a .deb to a Debian HA cluster",
		Version: version,
		Description: "debship builds a reproducible .deb with a bundled virtualenv from pyproject.toml,\n" +
			"writes the GitLab CI pipeline, sets up a two-node pacemaker cluster over SSH,\n" +
			"and rolls new versions across it without dropping requests.",
		Commands:             commands,
		EnableBashCompletion: true,
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{err}
		},
		ExitErrHandler: func(c *cli.Context, err error) {},
	}
}

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	app := newApp()
	err := app.Run(interspersed(app, args))
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "debship: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.ExitCode() != 0 {
		return ec.ExitCode()
	}
	return exitFailure
}

// markUsageErrors makes a bad flag on any command exit 2, as a bad flag on
// the app itself does.
func markUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = func(c *cli.Context, err error, isSubcommand bool) error {
				return usageError{err}
			}
		}
		markUsageErrors(c.Subcommands)
	}
}
