package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/debbuild"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "add a commented [tool.debship] table to pyproject.toml",
		ArgsUsage: "[PROJECT-DIR]",
		Description: `Appends a [tool.debship] table, every key commented out with its default,
to PROJECT-DIR/pyproject.toml (default: the current directory). Nothing else
in the file changes. Refuses when the table already exists.`,
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("init takes at most one PROJECT-DIR")
			}
			dir := c.Args().First()
			if dir == "" {
				dir = "."
			}
			file, err := debbuild.Init(dir)
			if err != nil {
				return err
			}
			fmt.Printf("added a commented [tool.debship] table to %s\n", file)
			return nil
		},
	}
}
