package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/debbuild/debversion"
)

// pipFlags pass through to pip, for users behind a mirror or offline.
func pipFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "index-url", Usage: "pip `URL` of the package index (also PIP_INDEX_URL)"},
		&cli.StringSliceFlag{Name: "extra-index-url", Usage: "extra pip index `URL` (repeatable)"},
		&cli.StringSliceFlag{Name: "find-links", Usage: "pip --find-links `DIR|URL` with wheels (repeatable)"},
		&cli.BoolFlag{Name: "no-index", Usage: "do not use any package index: only --find-links"},
		&cli.BoolFlag{Name: "no-build-isolation", Usage: "build every wheel (the project's and sdists of dependencies) with the build host's packages"},
		&cli.BoolFlag{Name: "build-isolation", Usage: "always build the project's wheel in pip's isolated environment (default: only when the host's packages do not satisfy [build-system] requires)"},
	}
}

// pipOptions are the build options pipFlags set.
func pipOptions(c *cli.Context) debbuild.BuildOptions {
	return debbuild.BuildOptions{
		IndexURL:         c.String("index-url"),
		ExtraIndexURLs:   c.StringSlice("extra-index-url"),
		FindLinks:        c.StringSlice("find-links"),
		NoIndex:          c.Bool("no-index"),
		NoBuildIsolation: c.Bool("no-build-isolation"),
		BuildIsolation:   c.Bool("build-isolation"),
	}
}

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build a .deb with a bundled virtualenv from pyproject.toml",
		ArgsUsage: "[PROJECT-DIR]",
		Description: `Reads PROJECT-DIR/pyproject.toml (default: the current directory): [project]
and the optional [tool.debship] table. Builds the virtualenv with Debian's
/usr/bin/python3 at its final path (/opt/venvs/<package>), adds systemd units,
maintainer scripts, a system user, conffiles and docs, and writes
<output>/<package>_<version>_<arch>.deb. The path of each .deb is a line of
standard output. Two builds of one commit are byte-identical
(SOURCE_DATE_EPOCH, default: the last commit's time). The same command is the
CI build job.

A target is a Debian release: debian-13 (trixie, Python 3.13) or debian-12
(bookworm, Python 3.11). The default is the build host's release, or
[tool.debship] targets = ["debian-13", "debian-12"] to build several. The
version carries the target (1.4-1+deb13u1), so the builds for both releases
can share one APT repository. A build for the host's own release uses its
/usr/bin/python3; a build for another release runs as root in a cached
minimal root of that release (/var/cache/debship/build, made with
debootstrap, renewed daily or with --refresh), so that the venv, the Python
Depends and the library Depends are that release's.

Examples:
   debship build
   debship build --target debian-13 --target debian-12
   debship build ../other-app --output /tmp/out --find-links ./wheels --no-index`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `DIR` (default: PROJECT-DIR/dist)"},
			&cli.StringFlag{Name: "package", Usage: "Debian package `NAME` (overrides [tool.debship] package)"},
			&cli.StringFlag{Name: "version", Usage: "upstream PEP 440 `VERSION` (overrides pyproject.toml)"},
			&cli.StringFlag{Name: "revision", Usage: "Debian `REVISION` (default 1)"},
			&cli.StringSliceFlag{Name: "target", Usage: "Debian release to build for: `TARGET` debian-13 or debian-12 (repeatable; default [tool.debship] targets, else the host's release)"},
			&cli.BoolFlag{Name: "refresh", Usage: "rebuild the cached root of another release before building in it"},
			&cli.StringFlag{Name: "python", Usage: "interpreter by absolute `PATH` (default /usr/bin/python3)"},
			&cli.StringFlag{Name: "compression", Usage: "data.tar compression: xz (default), zstd, gzip or none"},
			&cli.StringFlag{Name: "mode", Usage: "who runs the service: systemd (the package enables and starts it) or cluster (pacemaker does)"},
			&cli.BoolFlag{Name: "keep-pip", Usage: "ship pip and setuptools in the venv"},
			&cli.Int64Flag{Name: "source-date-epoch", Usage: "timestamp `SECONDS` of every file (default: $SOURCE_DATE_EPOCH, else the last commit)"},
			&cli.BoolFlag{Name: "keep-staging", Usage: "keep the staging directory (for debugging)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show pip's output"},
		}, pipFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("build takes at most one PROJECT-DIR, got %d arguments", c.NArg())
			}
			dir := c.Args().First()
			if dir == "" {
				dir = "."
			}
			spec, err := debbuild.LoadSpec(dir, debbuild.Overrides{
				Package:     c.String("package"),
				Version:     c.String("version"),
				Revision:    c.String("revision"),
				Python:      c.String("python"),
				Compression: c.String("compression"),
				Mode:        c.String("mode"),
				KeepPip:     c.Bool("keep-pip"),
			})
			if err != nil {
				return err
			}
			o := pipOptions(c)
			o.Output, o.KeepStaging = c.String("output"), c.Bool("keep-staging")
			o.SourceDateEpoch, o.Verbose, o.Log = c.Int64("source-date-epoch"), c.Bool("verbose"), os.Stderr
			o.Refresh = c.Bool("refresh")
			targets := c.StringSlice("target")
			for _, tg := range targets {
				if _, _, err := debversion.ResolveTarget(tg); err != nil {
					return usagef("--target: %v", err)
				}
			}
			if len(targets) == 0 {
				targets = spec.Targets
			}
			if len(targets) == 0 {
				targets = []string{""} // the host's release
			}
			for _, tg := range targets {
				o.Target = tg
				res, err := debbuild.Build(c.Context, spec, o)
				if err != nil {
					if tg != "" {
						return fmt.Errorf("build for %s: %w", tg, err)
					}
					return err
				}
				fmt.Println(res.Path)
			}
			return nil
		},
	}
}
