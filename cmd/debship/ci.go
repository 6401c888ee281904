package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/ci"
	"gitlab.com/debship/debship/debbuild"
)

func ciCommand() *cli.Command {
	return &cli.Command{
		Name:  "ci",
		Usage: "GitLab CI pipeline of the project",
		Subcommands: []*cli.Command{
			ciGenerateCommand(),
		},
	}
}

func ciGenerateCommand() *cli.Command {
	return &cli.Command{
		Name:      "generate",
		Usage:     "write .gitlab-ci.yml (and Dockerfile, .dockerignore with --docker) from pyproject.toml",
		ArgsUsage: "[PROJECT-DIR]",
		Description: `Writes PROJECT-DIR/.gitlab-ci.yml from the same pyproject.toml that
"debship build" reads: stages test (pytest, when the project has tests),
build (one job per target of [tool.debship] targets, default every release
debship builds for: build:debian-13 runs "debship build --target debian-13"
in debian:trixie, build:debian-12 in debian:bookworm; each .deb is an
artifact and its path is in the dotenv report as DEB_PATH_DEBIAN_13 and
DEB_PATH_DEBIAN_12), docker (optional), release (tags: debship release of
every target's .deb) and deploy (tags: debship deploy, which picks the .deb
built for the nodes' release; manual unless --auto-deploy). debship itself is installed in the jobs with a pinned
"go install gitlab.com/debship/debship/cmd/debship@<version>".

Every option is also a key of [tool.debship.ci] (the flag wins). The files
start with a comment saying how to regenerate them and a checksum of what
was written: a file edited by hand since is not overwritten without --force.
--check changes nothing: it prints a diff and exits 1 if a file is stale.

Examples:
   debship ci generate
   debship ci generate --docker --auto-deploy
   debship ci generate --check`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "check", Usage: "change nothing; print a diff and exit 1 if a generated file is missing or stale"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite files edited by hand"},
			&cli.BoolFlag{Name: "docker", Usage: "also build a Docker Hub image from the .deb (Dockerfile, .dockerignore, docker job)"},
			&cli.StringFlag{Name: "docker-image", Usage: "Docker Hub `USER/REPO` (implies --docker; default $DOCKERHUB_USERNAME/<package>)"},
			&cli.StringFlag{Name: "docker-builder", Usage: "`buildx` (docker-in-docker, default) or buildah (no privileged runner)"},
			&cli.BoolFlag{Name: "no-deploy", Usage: "omit the deploy job"},
			&cli.BoolFlag{Name: "auto-deploy", Usage: "deploy release tags without a manual click"},
			&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "cluster inventory `FILE` of the deploy job (default cluster.toml)"},
			&cli.StringFlag{Name: "debship-version", Usage: "debship `VERSION` the jobs install, e.g. v0.1.0 (default: this binary's version)"},
			&cli.StringFlag{Name: "test-command", Usage: "shell `COMMAND` of the test job (default: python -m pytest when there are tests)"},
			&cli.StringFlag{Name: "build-image", Usage: "`IMAGE` of the test job and of one build job for the image's own release, instead of one build job per target"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("ci generate takes at most one PROJECT-DIR, got %d arguments", c.NArg())
			}
			if c.Bool("check") && c.Bool("force") {
				return usagef("--check changes nothing, so --force makes no sense with it")
			}
			if c.Bool("no-deploy") && c.Bool("auto-deploy") {
				return usagef("--no-deploy and --auto-deploy contradict each other")
			}
			dir := c.Args().First()
			if dir == "" {
				dir = "."
			}
			spec, err := debbuild.LoadSpec(dir, debbuild.Overrides{})
			if err != nil {
				return err
			}
			o := ci.FromSpec(spec, ci.BinaryVersion(version))
			override(c, &o.Docker, "docker", c.Bool)
			override(c, &o.DockerImage, "docker-image", c.String)
			override(c, &o.DockerBuilder, "docker-builder", c.String)
			if c.IsSet("no-deploy") {
				o.Deploy = !c.Bool("no-deploy")
			}
			override(c, &o.AutoDeploy, "auto-deploy", c.Bool)
			override(c, &o.Inventory, "inventory", c.String)
			override(c, &o.DebshipVersion, "debship-version", c.String)
			override(c, &o.TestCommand, "test-command", c.String)
			override(c, &o.BuildImage, "build-image", c.String)
			files, err := ci.Generate(spec, o)
			if err != nil {
				return err
			}
			for _, w := range ci.Warnings(spec, o) {
				fmt.Fprintln(os.Stderr, "warning: "+w)
			}
			if c.Bool("check") {
				st, err := ci.Check(spec.Dir, files)
				if err != nil {
					return err
				}
				stale := 0
				for _, s := range st {
					if s.Action != "unchanged" {
						stale++
						fmt.Print(s.Diff)
					}
				}
				if stale > 0 {
					return cli.Exit(fmt.Sprintf("%d generated file(s) missing or stale: run debship ci generate and commit the result", stale), exitFailure)
				}
				fmt.Fprintln(os.Stderr, "generated files are current")
				return nil
			}
			st, err := ci.Write(spec.Dir, files, c.Bool("force"))
			var he *ci.HandEditedError
			if errors.As(err, &he) {
				fmt.Fprint(os.Stderr, he.Diff)
			}
			if err != nil {
				return err
			}
			for _, s := range st {
				fmt.Fprintf(os.Stderr, "%s %s\n", s.Action, s.Name)
			}
			if o.Deploy {
				if _, err := os.Stat(ci.InventoryPath(spec.Dir, o)); err != nil {
					fmt.Fprintf(os.Stderr, "note: the deploy job uses %s, which does not exist yet; create it, or regenerate with --no-deploy\n", ci.InventoryName(o))
				}
			}
			return nil
		},
	}
}
