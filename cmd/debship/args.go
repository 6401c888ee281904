package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves flags that follow positional arguments in front of
// them, so that `debship build ../app --output /tmp/out` works: urfave/cli
// v2 stops reading flags at the first positional argument.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	cmds, flags := app.Commands, app.Flags
	i := 1
	// Descend through the command words first.
	for i < len(args) {
		c := findCommand(cmds, args[i])
		if c == nil {
			if strings.HasPrefix(args[i], "-") && len(cmds) > 0 {
				// global flags before the command stay where they are
				out = append(out, args[i])
				if takesValue(flags, args[i]) && i+1 < len(args) {
					out = append(out, args[i+1])
					i++
				}
				i++
				continue
			}
			break
		}
		out = append(out, args[i])
		cmds, flags = c.Subcommands, c.Flags
		i++
	}
	var fl, pos []string
	raw := passThrough[strings.Join(out[1:], " ")]
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case raw && len(pos) > 0:
			// A command line for somewhere else: its flags are its own.
			pos = append(pos, a)
		case a == "--":
			pos = append(pos, args[i:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			fl = append(fl, a)
			if takesValue(flags, a) && i+1 < len(args) {
				fl = append(fl, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	out = append(out, fl...)
	return append(out, pos...)
}

// passThrough names commands whose arguments after the first are a command
// line of their own ("debship lab ssh node1 ls -l"), left as they are.
var passThrough = map[string]bool{"lab ssh": true}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// takesValue reports whether the flag token names a flag with a value that
// is not given inline ("--output DIR", not "--output=DIR" or "--no-index").
func takesValue(flags []cli.Flag, tok string) bool {
	name := strings.TrimLeft(tok, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				if v, ok := f.(cli.DocGenerationFlag); ok {
					return v.TakesValue()
				}
				return false
			}
		}
	}
	return false
}

// override sets *dst to the value of the flag name (read with get, e.g.
// c.String) when the user gave that flag; otherwise the value *dst already
// has (from the Spec or the environment) stands.
func override[T any](c *cli.Context, dst *T, name string, get func(string) T) {
	if c.IsSet(name) {
		*dst = get(name)
	}
}
