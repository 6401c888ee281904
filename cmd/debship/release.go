package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/ci/gitlab"
)

// gitlabConfig is GitLab CI's configuration (gitlab.ConfigFromEnv) with
// what the flags --gitlab-url, --project, --tag and --ref set instead.
func gitlabConfig(c *cli.Context) gitlab.Config {
	cfg := gitlab.ConfigFromEnv(os.Getenv)
	override(c, &cfg.APIURL, "gitlab-url", c.String)
	override(c, &cfg.Project, "project", c.String)
	override(c, &cfg.Tag, "tag", c.String)
	override(c, &cfg.Ref, "ref", c.String)
	return cfg
}

func releaseCommand() *cli.Command {
	return &cli.Command{
		Name:      "release",
		Usage:     "publish .deb files as a GitLab release (generic package registry + release links)",
		ArgsUsage: "[DEB...]",
		Description: `Uploads each .deb (default: dist/*.deb) to the project's generic package
registry as <package>/<version>/<file> (package = the Debian package name,
version = the tag without its leading "v"), creates the GitLab release of
the tag if it is missing, links each file from it (link type "package",
direct asset path /packages/<file>) and prints the release URL.

In GitLab CI it needs no options: it reads CI_API_V4_URL, CI_PROJECT_ID,
CI_COMMIT_TAG and CI_JOB_TOKEN. Outside CI pass --gitlab-url, --project and
--tag, and set GITLAB_TOKEN to an access token with the api scope (it also
wins over CI_JOB_TOKEN in CI). The token is never printed.

Running it again for the same tag is safe: files already uploaded with the
same SHA-256 are not uploaded again and existing links are kept. The tag
must match the version inside the .deb.

Examples:
   debship release                       # in a tag pipeline
   GITLAB_TOKEN=... debship release --gitlab-url https://gitlab.example.com \
       --project group/app --tag v1.4.0 dist/app_1.4-1+deb13u1_all.deb`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "gitlab-url", Usage: "GitLab `URL`, e.g. https://gitlab.com (default $CI_API_V4_URL)"},
			&cli.StringFlag{Name: "project", Usage: "project `ID` or path such as group/app (default $CI_PROJECT_ID)"},
			&cli.StringFlag{Name: "tag", Usage: "release `TAG`, e.g. v1.4.0 (default $CI_COMMIT_TAG)"},
			&cli.StringFlag{Name: "ref", Usage: "commit or branch to create the tag from if it does not exist (default $CI_COMMIT_SHA)"},
			&cli.StringFlag{Name: "name", Usage: "release `TITLE` (default \"<package> <version>\")"},
			&cli.StringFlag{Name: "notes", Usage: "release notes `TEXT` (default: the files and their SHA-256)"},
		},
		Action: func(c *cli.Context) error {
			cfg := gitlabConfig(c)
			cfg.Name = c.String("name")
			cfg.Description = c.String("notes")
			cfg.Files = c.Args().Slice()
			if len(cfg.Files) == 0 {
				m, _ := filepath.Glob(filepath.Join("dist", "*.deb"))
				if len(m) == 0 {
					return usagef("no .deb given and none in dist/: pass the files to release, e.g. debship release dist/app_1.0-1_all.deb")
				}
				cfg.Files = m
			}
			for _, f := range cfg.Files {
				if !strings.HasSuffix(f, ".deb") {
					return usagef("%s is not a .deb file", f)
				}
			}
			cfg.Log = os.Stderr
			res, err := gitlab.Release(c.Context, cfg)
			if err != nil {
				return err
			}
			fmt.Println(res.ReleaseURL)
			return nil
		},
	}
}
