package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gitlab.com/debship/debship/ci/gitlab"
)

// Deployer installs a fetched .deb on the cluster. The receiver calls it
// from its single worker, so never twice at once. When ctx is cancelled
// (shutdown after the grace period, or the deploy timeout) it must stop
// safely and return: finish or roll back the step in progress, release the
// cluster's deploy lock, and return a non-nil error if the new version is
// not fully deployed. The rolling deploy of cluster/deploy is the real one;
// CommandDeployer runs a command of the user's.
type Deployer interface {
	Deploy(ctx context.Context, job Job, debPath string) error
}

// DeployerFunc adapts a function to a Deployer.
type DeployerFunc func(ctx context.Context, job Job, debPath string) error

// Deploy calls f.
func (f DeployerFunc) Deploy(ctx context.Context, job Job, debPath string) error {
	return f(ctx, job, debPath)
}

// Artifact is a fetched and verified .deb.
type Artifact struct {
	Path   string // in the download directory
	SHA256 string
	Source string // where it came from and what it was checked against
}

// Fetcher gets the .deb of a job's version (for the job's Target) into dir.
type Fetcher interface {
	Fetch(ctx context.Context, job Job, dir string) (Artifact, error)
}

// GitLabFetcher downloads the .deb from the GitLab of the configuration:
// the generic package registry (as `debship release` uploads it, SHA-256
// checked against the registry's listing) or a job's artifacts. The
// download location is built from the configuration and the tag, never
// taken from a URL in the payload: the read token only goes to the
// configured GitLab.
type GitLabFetcher struct {
	Config *Config
	Log    io.Writer // progress lines; nil: none
	// Retry waits of the API client; zero: its defaults (tests shorten them).
	RetryWaitMin, RetryWaitMax time.Duration
}

// Fetch implements Fetcher.
func (f *GitLabFetcher) Fetch(ctx context.Context, job Job, dir string) (Artifact, error) {
	c := f.Config
	cfg := c.apiConfig(job.Tag, f.Log, f.RetryWaitMin, f.RetryWaitMax)
	target := or(job.Target, c.Target)
	o := gitlab.FetchOptions{Package: c.Package, Arch: c.Arch, Target: target, Dir: dir, MaxBytes: c.MaxDownload}
	var got *gitlab.Fetched
	var err error
	if c.Source == SourceArtifacts {
		got, err = gitlab.FetchArtifact(ctx, cfg, c.ArtifactsJobFor(target), o)
	} else {
		got, err = gitlab.FetchPackage(ctx, cfg, o)
	}
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Path: got.Path, SHA256: got.SHA256, Source: got.Source + ", checked: " + got.Verified}, nil
}

// apiConfig is how the receiver talks to its GitLab about tag: the
// configured project and read token, and advice that names the
// configuration file.
func (c *Config) apiConfig(tag string, log io.Writer, retryWaitMin, retryWaitMax time.Duration) gitlab.Config {
	return gitlab.Config{
		APIURL:       c.GitLabAPI,
		Project:      c.APIProject(),
		Tag:          tag,
		Token:        c.GitLabToken.reveal(),
		Log:          log,
		RetryWaitMin: retryWaitMin,
		RetryWaitMax: retryWaitMax,
		TokenHint:    fmt.Sprintf("check [gitlab.token] in %s: an unexpired access token with the read_api scope and at least the Reporter role", c.File),
		ProjectHint:  fmt.Sprintf("check [project] in %s and that the token's user is a member of the project", c.File),
	}
}

// CommandDeployer runs a command of the user's for each deploy:
//
//	<argv...> <path of the .deb>
//
// with DEBSHIP_DEB, DEBSHIP_VERSION, DEBSHIP_TAG, DEBSHIP_JOB,
// DEBSHIP_PROJECT_ID, DEBSHIP_SHA and DEBSHIP_INVENTORY in its environment
// (the tag is a plain version tag by then: no shell characters). No shell
// is involved. It does not inherit the environment variables the
// configuration reads secrets from. Cancelling sends SIGTERM to its process
// group and, WaitDelay later, SIGKILL.
type CommandDeployer struct {
	Argv      []string
	Inventory string
	DropEnv   []string      // variables not passed on (the configuration's secrets)
	WaitDelay time.Duration // after SIGTERM; zero: 30s
	Log       *slog.Logger
}

// Deploy implements Deployer.
func (d *CommandDeployer) Deploy(ctx context.Context, job Job, debPath string) error {
	if len(d.Argv) == 0 {
		return errors.New("no deploy command")
	}
	cmd := exec.CommandContext(ctx, d.Argv[0], append(append([]string{}, d.Argv[1:]...), debPath)...)
	drop := map[string]bool{}
	for _, k := range d.DropEnv {
		drop[k] = true
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] && !strings.HasPrefix(k, "DEBSHIP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"DEBSHIP_DEB="+debPath,
		"DEBSHIP_VERSION="+job.Version,
		"DEBSHIP_TAG="+job.Tag,
		"DEBSHIP_JOB="+job.ID,
		"DEBSHIP_PROJECT_ID="+strconv.FormatInt(job.ProjectID, 10),
		"DEBSHIP_SHA="+job.SHA,
		"DEBSHIP_INVENTORY="+d.Inventory,
	)
	cmd.Stdin = nil
	// Its own process group, so that a cancel reaches the children of a
	// script too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = d.WaitDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 30 * time.Second
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := &tailWriter{log: log.With("job", job.ID), max: 20}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	out.flush()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("deploy command %s stopped: %w (last output: %s)", d.Argv[0], ctx.Err(), out.tail())
	}
	return fmt.Errorf("deploy command %s failed: %v (last output: %s)", d.Argv[0], err, out.tail())
}

// tailWriter logs a command's output line by line and keeps the last
// lines for the error message.
type tailWriter struct {
	mu      sync.Mutex
	log     *slog.Logger
	partial []byte
	last    []string
	max     int
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := strings.IndexByte(string(w.partial), '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 4096 { // a line without end: cut it
		w.line(string(w.partial))
		w.partial = nil
	}
	return len(p), nil
}

func (w *tailWriter) line(l string) {
	l = strings.TrimRight(l, "\r")
	w.log.Info("deploy command", "out", l)
	w.last = append(w.last, l)
	if len(w.last) > w.max {
		w.last = w.last[1:]
	}
}

func (w *tailWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
}

func (w *tailWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var nonEmpty []string
	for _, l := range w.last {
		if strings.TrimSpace(l) != "" {
			nonEmpty = append(nonEmpty, l)
		}
	}
	if len(nonEmpty) > 3 {
		nonEmpty = nonEmpty[len(nonEmpty)-3:]
	}
	if len(nonEmpty) == 0 {
		return "none"
	}
	return strings.Join(nonEmpty, " | ")
}

// SelectDeployer picks what deploys for a configuration: the [deploy]
// command when one is set, else rolling(cfg), the rolling deploy to the
// inventory (cluster/ship's RollingDeployer: this package cannot import
// cluster/deploy, whose lab test drives the receiver).
func SelectDeployer(cfg *Config, rolling func(*Config) (Deployer, error), log *slog.Logger) (Deployer, error) {
	if len(cfg.Command) > 0 {
		return &CommandDeployer{Argv: cfg.Command, Inventory: cfg.Inventory, DropEnv: cfg.SecretEnvVars(), Log: log}, nil
	}
	d, err := rolling(cfg)
	if err != nil {
		return nil, fmt.Errorf("the rolling deploy to %s: %w", cfg.Inventory, err)
	}
	return d, nil
}
