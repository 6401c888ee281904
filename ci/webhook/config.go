package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"gitlab.com/debship/debship/ci"
	"gitlab.com/debship/debship/cluster/inventory"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/grammar"
	"gitlab.com/debship/debship/internal/tomlfile"
)

// Events that can trigger a deploy ([trigger] event).
const (
	TriggerPipeline = "pipeline" // Pipeline Hook: a tag pipeline succeeded
	TriggerRelease  = "release"  // Release Hook: a release was created
	TriggerJob      = "job"      // Job Hook: a named job of a tag pipeline succeeded
)

// Where the .deb comes from ([gitlab] source).
const (
	SourceRegistry  = "registry"  // the generic package registry (debship release)
	SourceArtifacts = "artifacts" // the artifacts of a job of the tag's pipeline
)

// Defaults of webhook.toml.
const (
	DefaultListen        = "127.0.0.1:8470"
	DefaultPath          = "/hooks/gitlab"
	DefaultMaxBody       = 2 << 20 // a Pipeline Hook of a few hundred jobs stays well below
	DefaultShutdownGrace = 5 * time.Minute
	DefaultDeployTimeout = 30 * time.Minute
	DefaultTagPattern    = `v?[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?`
	DefaultTriggerJob    = "release"
)

// Config is a loaded webhook.toml with its secrets read. Secrets print as
// "[redacted]", so a Config can be logged or wrapped into an error.
type Config struct {
	File string // the file it was read from

	Listen        string
	Path          string
	BehindProxy   bool
	TLSCert       string // PEM certificate chain; empty: plain HTTP
	TLSKey        Secret // PEM private key
	StateDir      string
	Inventory     string // cluster.toml to deploy to; may be empty with a deploy command
	MaxBody       int64
	ShutdownGrace time.Duration

	Token      Secret // X-Gitlab-Token
	SigningKey Secret // HMAC key (decoded); empty: deliveries are not signed

	ProjectID   int64
	ProjectPath string

	Trigger string         // TriggerPipeline, TriggerRelease or TriggerJob
	Job     string         // pipeline: this job must have succeeded; job: the job whose success deploys
	Tags    *regexp.Regexp // the whole tag must match

	GitLabAPI    string // e.g. https://gitlab.example.com/api/v4
	GitLabToken  Secret
	Source       string // SourceRegistry or SourceArtifacts
	ArtifactsJob string // as written; ArtifactsJobFor gives the default
	Package      string // Debian package name = generic package name
	Arch         string // Debian architecture of the nodes
	MaxDownload  int64
	// Target is the Debian release of the nodes ("debian-13"), which picks
	// the .deb of a release that holds one per build target. Empty: read
	// from the inventory's nodes before each fetch (Options.Target).
	Target string

	Command       []string // deploy with this command instead of the rolling deploy
	DeployTimeout time.Duration

	lines     map[string]int
	secretEnv []string
}

// APIProject is the project as the GitLab API wants it: the ID, else the
// path.
func (c *Config) APIProject() string {
	if c.ProjectID != 0 {
		return strconv.FormatInt(c.ProjectID, 10)
	}
	return c.ProjectPath
}

// ArtifactsJobFor is the job whose artifacts hold the .deb for target: the
// configured artifacts-job, else the build job `debship ci generate` makes
// for the target.
func (c *Config) ArtifactsJobFor(target string) string {
	if c.ArtifactsJob != "" {
		return c.ArtifactsJob
	}
	return ci.BuildJobName(target)
}

// SecretEnvVars lists the environment variables the configuration reads
// secrets from, so that a deploy command does not inherit them.
func (c *Config) SecretEnvVars() []string { return c.secretEnv }

// fileConfig is webhook.toml as written.
type fileConfig struct {
	Listen        string       `toml:"listen"`
	Path          string       `toml:"path"`
	BehindProxy   bool         `toml:"behind-proxy"`
	StateDir      string       `toml:"state-dir"`
	Inventory     string       `toml:"inventory"`
	MaxBodyBytes  int64        `toml:"max-body-bytes"`
	ShutdownGrace string       `toml:"shutdown-grace"`
	TLS           *tlsTable    `toml:"tls"`
	Token         *secretRef   `toml:"token"`
	SigningKey    *secretRef   `toml:"signing-key"`
	Project       projectTable `toml:"project"`
	Trigger       triggerTable `toml:"trigger"`
	GitLab        gitlabTable  `toml:"gitlab"`
	Deploy        deployTable  `toml:"deploy"`
}

type tlsTable struct {
	Cert string     `toml:"cert"`
	Key  *secretRef `toml:"key"`
}

// secretRef says where a secret is: exactly one of the four.
type secretRef struct {
	File       string `toml:"file"`       // a file only its owner can use (internal/secretfile)
	Env        string `toml:"env"`        // an environment variable
	Credential string `toml:"credential"` // a systemd credential (LoadCredential=), in $CREDENTIALS_DIRECTORY
	Value      string `toml:"value"`      // inline: only in a webhook.toml others cannot read
}

type projectTable struct {
	ID   int64  `toml:"id"`
	Path string `toml:"path"`
}

type triggerTable struct {
	Event string `toml:"event"`
	Job   string `toml:"job"`
	Tags  string `toml:"tags"`
}

type gitlabTable struct {
	URL              string     `toml:"url"`
	Token            *secretRef `toml:"token"`
	Source           string     `toml:"source"`
	ArtifactsJob     string     `toml:"artifacts-job"`
	Package          string     `toml:"package"`
	Arch             string     `toml:"arch"`
	Target           string     `toml:"target"`
	MaxDownloadBytes int64      `toml:"max-download-bytes"`
}

type deployTable struct {
	Command []string `toml:"command"`
	Timeout string   `toml:"timeout"`
}

// Load reads webhook.toml, its secrets and (when named) the inventory.
// Every error names the file and line and says what to change.
func Load(path string) (*Config, error) {
	// One open: the mode and owner that allow inline secrets are those of
	// the file read.
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	var fc fileConfig
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, tomlfile.Error(path, err, tomlfile.Options{SeeAlso: "debship webhook serve --help"})
	}
	c := &Config{File: path, lines: tomlfile.Lines(data)}
	if err := c.fill(&fc, fi); err != nil {
		return nil, err
	}
	return c, nil
}

// errAt is an error at the line of key ("gitlab.token", "trigger.tags").
func (c *Config) errAt(key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	for k := key; k != ""; {
		if l, ok := c.lines[k]; ok {
			return fmt.Errorf("%s:%d: %s", c.File, l, msg)
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return fmt.Errorf("%s: %s", c.File, msg)
}

// problems collects every mistake in a webhook.toml, so that one run of
// `debship webhook check` names them all.
type problems []error

func (p *problems) add(err error) {
	if err != nil {
		*p = append(*p, err)
	}
}

// fill checks fc and reads its secrets; config is webhook.toml's own
// FileInfo.
func (c *Config) fill(fc *fileConfig, config fs.FileInfo) error {
	// Relative paths are relative to the file, whatever the working
	// directory of the service.
	dir, err := filepath.Abs(filepath.Dir(c.File))
	if err != nil {
		return fmt.Errorf("%s: %w", c.File, err)
	}
	// A file anyone may change says which command runs as the receiver.
	if mode := config.Mode().Perm(); mode&0o002 != 0 {
		return fmt.Errorf("%s: the file is writable by every user (mode %04o), and it says what to deploy and which command to run; chmod o-w %s", c.File, mode, c.File)
	}
	var p problems
	c.fillServer(fc, dir, config, &p)
	c.fillSecrets(fc, config, &p)
	c.fillTrigger(fc, &p)
	c.fillGitLab(&fc.GitLab, fc.Inventory != "", config, &p)
	c.fillDeploy(&fc.Deploy, &p)
	c.fillPackage(fc, dir, &p)
	return errors.Join(p...)
}

// fillServer reads how the receiver listens and keeps its state: the
// top-level keys and [tls].
func (c *Config) fillServer(fc *fileConfig, dir string, config fs.FileInfo, p *problems) {
	c.Listen = or(fc.Listen, DefaultListen)
	host, port, lerr := net.SplitHostPort(c.Listen)
	if lerr != nil {
		p.add(c.errAt("listen", "listen = %q is not host:port; write e.g. listen = %q", c.Listen, DefaultListen))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(c.errAt("listen", "listen = %q: %q is not a TCP port", c.Listen, port))
	}
	c.Path = or(fc.Path, DefaultPath)
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, "?# ") || c.Path == "/status" || c.Path == "/healthz" {
		p.add(c.errAt("path", "path = %q must be an absolute URL path other than /status and /healthz, e.g. %q", c.Path, DefaultPath))
	}
	c.BehindProxy = fc.BehindProxy
	c.MaxBody = fc.MaxBodyBytes
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	} else if c.MaxBody < 65536 {
		p.add(c.errAt("max-body-bytes", "max-body-bytes = %d is too small for any GitLab event; use at least 65536 (default %d)", c.MaxBody, DefaultMaxBody))
	}
	c.ShutdownGrace = DefaultShutdownGrace
	if fc.ShutdownGrace != "" {
		d, err := time.ParseDuration(fc.ShutdownGrace)
		if err != nil || d < 0 {
			p.add(c.errAt("shutdown-grace", "shutdown-grace = %q is not a duration such as \"5m\" or \"90s\"", fc.ShutdownGrace))
		}
		c.ShutdownGrace = d
	}

	c.StateDir = fc.StateDir
	if c.StateDir == "" {
		// systemd's StateDirectory= sets it; debship-webhook.service uses it.
		c.StateDir = os.Getenv("STATE_DIRECTORY")
	}
	if c.StateDir == "" {
		p.add(c.errAt("", "no state-dir: add state-dir = \"/var/lib/debship-webhook\" (the queue and history are kept there)"))
	} else {
		c.StateDir = resolve(dir, c.StateDir)
	}

	// TLS, or a reason not to need it: the token travels in clear text.
	if fc.TLS != nil {
		if fc.TLS.Cert == "" || fc.TLS.Key == nil {
			p.add(c.errAt("tls", "[tls] needs both cert = \"/path/fullchain.pem\" and a [tls.key] with file or credential"))
			return
		}
		c.TLSCert = resolve(dir, fc.TLS.Cert)
		if _, err := os.Stat(c.TLSCert); err != nil {
			p.add(c.errAt("tls.cert", "TLS certificate: %v", err))
		}
		var err error
		c.TLSKey, err = c.readSecret("tls.key", fc.TLS.Key, config)
		p.add(err)
	} else if lerr == nil && !c.BehindProxy && !loopback(host) {
		p.add(c.errAt("listen", "listen = %q is reachable from other hosts over plain HTTP, where the token would travel in clear text; add a [tls] table, or listen on 127.0.0.1 behind a TLS reverse proxy (or set behind-proxy = true when the proxy is on another host of a private network)", c.Listen))
	}
}

// fillSecrets reads [token] and [signing-key].
func (c *Config) fillSecrets(fc *fileConfig, config fs.FileInfo, p *problems) {
	if fc.Token == nil {
		p.add(c.errAt("", "no [token]: the secret token GitLab sends in X-Gitlab-Token is required; add [token] with credential = \"webhook_token\" (systemd) or file = \"/etc/debship/webhook-token\""))
	} else {
		var err error
		c.Token, err = c.readSecret("token", fc.Token, config)
		p.add(err)
		if err == nil && len(c.Token.b) < 16 {
			p.add(c.errAt("token", "the secret token is only %d characters; use at least 16 random ones (e.g. openssl rand -hex 32)", len(c.Token.b)))
		}
	}
	if fc.SigningKey != nil {
		raw, err := c.readSecret("signing-key", fc.SigningKey, config)
		p.add(err)
		if err == nil {
			k, derr := decodeSigningKey(raw.b)
			if derr != nil {
				p.add(c.errAt("signing-key", "the signing token is not GitLab's whsec_<base64> form: %v; copy it exactly as GitLab showed it", derr))
			}
			c.SigningKey = Secret{k}
		}
	}
}

// fillTrigger reads which deliveries deploy: [project] and [trigger].
func (c *Config) fillTrigger(fc *fileConfig, p *problems) {
	c.ProjectID, c.ProjectPath = fc.Project.ID, strings.Trim(fc.Project.Path, "/")
	if c.ProjectID == 0 && c.ProjectPath == "" {
		p.add(c.errAt("project", "no project: add [project] with id = 42 and/or path = \"group/app\"; deliveries of other projects are ignored"))
	}
	if c.ProjectID < 0 {
		p.add(c.errAt("project.id", "project id %d is not a GitLab project ID", c.ProjectID))
	}

	c.Trigger = or(fc.Trigger.Event, TriggerPipeline)
	c.Job = fc.Trigger.Job
	switch c.Trigger {
	case TriggerPipeline, TriggerRelease:
	case TriggerJob:
		c.Job = or(c.Job, DefaultTriggerJob)
	default:
		p.add(c.errAt("trigger.event", "trigger event %q is not %q, %q or %q", c.Trigger, TriggerPipeline, TriggerRelease, TriggerJob))
	}
	if c.Trigger == TriggerRelease && c.Job != "" {
		p.add(c.errAt("trigger.job", "trigger job = %q has no meaning for release events; remove it", c.Job))
	}
	pattern := or(fc.Trigger.Tags, DefaultTagPattern)
	var err error
	c.Tags, err = regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		p.add(c.errAt("trigger.tags", "tags = %q is not a regular expression: %v", pattern, err))
	}
}

// fillGitLab reads where the .deb is fetched from: [gitlab], but for the
// package name (fillPackage). withInventory: the nodes' release can be
// read from the inventory's nodes.
func (c *Config) fillGitLab(gl *gitlabTable, withInventory bool, config fs.FileInfo, p *problems) {
	if gl.URL == "" {
		p.add(c.errAt("gitlab", "no GitLab URL: add [gitlab] url = \"https://gitlab.example.com\" (the .deb is downloaded from there)"))
	} else if api, err := apiURL(gl.URL); err != nil {
		p.add(c.errAt("gitlab.url", "%v", err))
	} else {
		c.GitLabAPI = api
	}
	if gl.Token == nil {
		p.add(c.errAt("gitlab", "no [gitlab.token]: add one with credential = \"webhook_gitlab-token\" or file = ...: an access token with the read_api scope and the Reporter role, to confirm pipelines and download packages"))
	} else {
		var err error
		c.GitLabToken, err = c.readSecret("gitlab.token", gl.Token, config)
		p.add(err)
	}
	c.Source = or(gl.Source, SourceRegistry)
	switch c.Source {
	case SourceRegistry:
		if gl.ArtifactsJob != "" {
			p.add(c.errAt("gitlab.artifacts-job", "artifacts-job is only used with source = %q; remove it", SourceArtifacts))
		}
	case SourceArtifacts:
		c.ArtifactsJob = gl.ArtifactsJob
	default:
		p.add(c.errAt("gitlab.source", "source = %q is not %q or %q", c.Source, SourceRegistry, SourceArtifacts))
	}
	if c.Arch = gl.Arch; c.Arch == "" {
		// The usual case: nodes like the host that deploys to them.
		c.Arch = debfile.HostArch()
	}
	if !archRE.MatchString(c.Arch) {
		p.add(c.errAt("gitlab.arch", "arch = %q is not a Debian architecture such as amd64 or arm64", c.Arch))
	}
	c.Target = gl.Target
	if c.Target != "" {
		if _, ok := debian.ByTarget(c.Target); !ok {
			if r, ok := debian.BySuite(c.Target); ok {
				p.add(c.errAt("gitlab.target", "target = %q is a codename; write target = %q", c.Target, r.Target))
			} else {
				p.add(c.errAt("gitlab.target", "target: %v", debian.UnknownTargetError(c.Target)))
			}
		}
	} else if !withInventory {
		p.add(c.errAt("gitlab", "no target: add [gitlab] target = %q (the nodes' Debian release, one of %s), or an inventory to read it from the nodes", debian.Releases[0].Target, strings.Join(debian.Targets(), ", ")))
	}
	c.MaxDownload = gl.MaxDownloadBytes
	if c.MaxDownload < 0 {
		p.add(c.errAt("gitlab.max-download-bytes", "max-download-bytes must be positive"))
	}
}

// fillDeploy reads [deploy].
func (c *Config) fillDeploy(d *deployTable, p *problems) {
	c.Command = d.Command
	if len(c.Command) > 0 {
		// An absolute path: no $PATH lookup decides what runs.
		if !filepath.IsAbs(c.Command[0]) {
			p.add(c.errAt("deploy.command", "deploy command %q must be an absolute path", c.Command[0]))
		} else if fi, err := os.Stat(c.Command[0]); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			p.add(c.errAt("deploy.command", "deploy command %s is not an executable file", c.Command[0]))
		}
	}
	c.DeployTimeout = DefaultDeployTimeout
	if d.Timeout != "" {
		t, err := time.ParseDuration(d.Timeout)
		if err != nil || t <= 0 {
			p.add(c.errAt("deploy.timeout", "timeout = %q is not a duration such as \"30m\"", d.Timeout))
		}
		c.DeployTimeout = t
	}
}

// fillPackage reads the inventory and the package to fetch, which is the
// inventory's [app] package unless [gitlab] package names it.
func (c *Config) fillPackage(fc *fileConfig, dir string, p *problems) {
	c.Package = fc.GitLab.Package
	if fc.Inventory != "" {
		c.Inventory = resolve(dir, fc.Inventory)
		inv, err := inventory.Load(c.Inventory)
		if err != nil {
			p.add(c.errAt("inventory", "inventory: %v", err))
		} else {
			switch {
			case c.Package == "":
				c.Package = inv.App.Package
			case inv.App.Package != "" && inv.App.Package != c.Package:
				p.add(c.errAt("gitlab.package", "package = %q, but the inventory %s runs %q; remove package to use the inventory's", c.Package, c.Inventory, inv.App.Package))
			}
		}
	} else if len(c.Command) == 0 {
		p.add(c.errAt("", "no inventory: add inventory = \"/etc/debship/cluster.toml\" (the cluster to deploy to), or a [deploy] command"))
	}
	if c.Package == "" && fc.Inventory == "" {
		p.add(c.errAt("gitlab", "no package name: add [gitlab] package = \"my-app\" (the Debian package name), or an inventory with [app] package"))
	} else if c.Package != "" && grammar.DebianPackage(c.Package) != nil {
		p.add(c.errAt("gitlab.package", "package = %q %v; write the name debship build gives the package", c.Package, grammar.DebianPackage(c.Package)))
	}
}

var (
	archRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apiURL turns the GitLab URL into the REST API base. The read token goes
// with every download, so plain http is only accepted on loopback.
func apiURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("gitlab url = %q is not an http(s) URL such as https://gitlab.example.com", raw)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return "", fmt.Errorf("gitlab url = %q uses plain http, which would send the read token in clear text; use https", raw)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("gitlab url = %q must not hold credentials or a query; put the token in [gitlab.token]", redactURL(u))
	}
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, "/api/v4") {
		p += "/api/v4"
	}
	u.Path = p
	return u.String(), nil
}

func redactURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery = nil, ""
	return c.String()
}
