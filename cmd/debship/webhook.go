package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/ci/webhook"
	"gitlab.com/debship/debship/cluster/ship"
	"gitlab.com/debship/debship/templates"
)

const defaultWebhookConfig = "/etc/debship/webhook.toml"

func webhookConfigFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: defaultWebhookConfig, Usage: "the receiver's configuration `FILE`"}
}

func webhookCommand() *cli.Command {
	return &cli.Command{
		Name:  "webhook",
		Usage: "receive GitLab webhooks and deploy green tagged pipelines",
		Description: `A GitLab webhook receiver: when a tag pipeline of the configured project
succeeds (or its release is created), it fetches that version's .deb from
GitLab and deploys it, one deploy at a time. debship's .deb ships it as
debship-webhook.service.`,
		Subcommands: []*cli.Command{webhookServeCommand(), webhookCheckCommand(), webhookExampleCommand()},
	}
}

func webhookServeCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the receiver until SIGTERM",
		Description: `Listens for GitLab webhook deliveries (project > Settings > Webhooks, with a
secret token; Pipeline, Release or Job events) and deploys the versions they
announce:

  - POST <path> with the right X-Gitlab-Token (compared in constant time; with
    a signing key also a valid webhook-signature at most 5 minutes old) is
    answered at once: 202 and a job ID when a deploy is queued, 200 when the
    delivery is ignored (other project, branch, tag outside the pattern,
    unknown event), a duplicate (same Idempotency-Key) or not newer than what
    is deployed. 401 is only for a bad token or signature, 413 for a body over
    max-body-bytes, 405/404 for other methods and paths.
  - One worker deploys: fetch the .deb (generic package registry, SHA-256
    checked, or the build job's artifacts), then the rolling deploy to the
    inventory, or the [deploy] command. A newer version arriving while a
    deploy runs replaces the older queued one; an older one is skipped.
  - The queue and history are kept in state-dir/state.json; a restart resumes
    the queue. GET /status shows the running, queued and last jobs (no
    secrets); GET /healthz answers ok.
  - SIGTERM: no new deliveries; a running deploy gets shutdown-grace to
    finish, is then stopped safely, and runs again at the next start.

Configuration (TOML, unknown keys are errors; secrets are never logged):
  listen = "127.0.0.1:8470"      plain HTTP only on loopback (or behind-proxy = true)
  path = "/hooks/gitlab"
  inventory = "cluster.toml"     the cluster; its [app] package is what is fetched
  state-dir = "/var/lib/..."     default $STATE_DIRECTORY (systemd)
  max-body-bytes, shutdown-grace = "5m"
  [tls] cert = "...", [tls.key]  TLS here instead of a reverse proxy
  [token]                        the secret token, as one of:
    credential = "webhook_token"   systemd LoadCredential= ($CREDENTIALS_DIRECTORY)
    file = "/etc/..."              a file of yours or root's, mode 600 (no group or other bits)
    env = "VAR"                    an environment variable
    value = "..."                  inline, only if this file is mode 600 and yours or root's
  [signing-key]                  optional, same forms: GitLab's whsec_... signing token
  [project] id = 42, path = "group/app"
  [trigger] event = "pipeline" | "release" | "job", job = "release",
            tags = 'v[0-9]+(\.[0-9]+)*'   (RE2, the whole tag)
  [gitlab] url = "https://gitlab.example.com", source = "registry" | "artifacts",
           target = "debian-13"   the nodes' Debian release: which .deb of the
                                  release (one per build job); default: read
                                  from the inventory's nodes before each fetch
           artifacts-job = "build:<target>", package, arch, max-download-bytes
  [gitlab.token]                 read_api access token, same forms as [token]
  [deploy] command = ["/abs/path", "args"...], timeout = "30m"

Whoever may push a tag matching the pattern can deploy: protect those tags
in GitLab. "debship webhook example" prints a commented configuration. With the
"pipeline" trigger, generate the pipeline with "debship ci generate
--no-deploy": its manual deploy job would keep the pipeline from succeeding.

Without a [deploy] command the .deb is rolled out to the inventory's cluster
exactly as "debship deploy" does (the deploy lock names "webhook job <id>
(<tag>)"; progress lines go to the journal). A [deploy] command replaces
that: it is run as <command...> <path of the .deb> with DEBSHIP_DEB,
DEBSHIP_VERSION, DEBSHIP_TAG, DEBSHIP_JOB, DEBSHIP_PROJECT_ID, DEBSHIP_SHA
and DEBSHIP_INVENTORY set, without the configuration's secret variables; it
is sent SIGTERM when the receiver stops it.

Examples:
   debship webhook serve --config /etc/debship/webhook.toml
   curl -s http://127.0.0.1:8470/status`,
		Flags: []cli.Flag{webhookConfigFlag()},
		Action: func(c *cli.Context) error {
			cfg, err := webhookConfig(c)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			dep, err := webhook.SelectDeployer(cfg, ship.RollingDeployer, log)
			if err != nil {
				return err
			}
			rec, err := webhook.New(cfg, webhook.Options{Deployer: dep, Log: log, Target: ship.ReceiverTarget(cfg)})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
			defer stop()
			return rec.ListenAndServe(ctx)
		},
	}
}

// webhookConfig reads the --config of webhook serve and check, which take no
// arguments.
func webhookConfig(c *cli.Context) (*webhook.Config, error) {
	if c.NArg() > 0 {
		return nil, usagef("webhook %s takes no arguments (got %q); pass the configuration with --config", c.Command.Name, c.Args().First())
	}
	return webhook.Load(c.String("config"))
}

func webhookCheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check a receiver configuration and its secrets without serving",
		Description: `Reads the configuration like serve does (the secrets, the inventory, the
deploy command) and prints what the receiver would do, without any secret.
Exits 1 with file:line errors when something is wrong.

Examples:
   debship webhook check --config /etc/debship/webhook.toml`,
		Flags: []cli.Flag{webhookConfigFlag()},
		Action: func(c *cli.Context) error {
			cfg, err := webhookConfig(c)
			if err != nil {
				return err
			}
			deployer := "the rolling deploy to " + cfg.Inventory
			if _, err := webhook.SelectDeployer(cfg, ship.RollingDeployer, nil); err != nil {
				return err
			} else if len(cfg.Command) > 0 {
				deployer = fmt.Sprintf("the command %q", cfg.Command)
			}
			scheme := "http"
			if cfg.TLSCert != "" {
				scheme = "https"
			}
			job := ""
			if cfg.Job != "" {
				job = " (job " + cfg.Job + ")"
			}
			fmt.Printf("%s: ok\n", cfg.File)
			fmt.Printf("  listens on   %s://%s%s\n", scheme, cfg.Listen, cfg.Path)
			fmt.Printf("  project      %s\n", cfg.APIProject())
			fmt.Printf("  deploys on   %s events%s, tags matching %s\n", cfg.Trigger, job, cfg.Tags)
			fmt.Printf("  signed       %v\n", cfg.SigningKey.IsSet())
			target := cfg.Target
			if target == "" {
				target = "<the nodes' release>"
			}
			from := "the " + cfg.Source
			if cfg.Source == webhook.SourceArtifacts {
				from = "the artifacts of job " + cfg.ArtifactsJobFor(target)
			}
			fmt.Printf("  fetches      %s %s %s from %s of %s\n", cfg.Package, cfg.Arch, target, from, cfg.GitLabAPI)
			fmt.Printf("  deploys with %s\n", deployer)
			fmt.Printf("  state        %s\n", cfg.StateDir)
			return nil
		},
	}
}

func webhookExampleCommand() *cli.Command {
	return &cli.Command{
		Name:  "example",
		Usage: "print a commented webhook.toml",
		Description: `Prints an example configuration for debship-webhook.service, with every
setting explained.

Examples:
   debship webhook example >/etc/debship/webhook.toml`,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("webhook example takes no arguments")
			}
			b, err := templates.Raw("webhook/webhook.toml")
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(b)
			return err
		},
	}
}
