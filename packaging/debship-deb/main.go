// Command debship-deb packages debship itself as a .deb (`make deb`): the
// binary in /usr/bin, a man page made from its --help, bash completion and
// the Debian docs, written with nfpm the way debbuild writes a project's
// package: every file listed with its mode, root ownership and an mtime
// clamped to SOURCE_DATE_EPOCH, so two builds of one commit are identical.
//
//	go run ./packaging/debship-deb --binary bin/debship --version v0.1.0 --output dist
//
// The path of the .deb is the last line of output.
package main

import (
	"debug/buildinfo"
	"debug/elf"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/templates"
)

// unit is a systemd unit of debship's own package.
type unit struct {
	Name     string // e.g. "debship-webhook.service"
	Template string // under templates/files/
}

// units debship's package ships in /lib/systemd/system. The webhook
// receiver's unit is installed but not enabled: it needs
// /etc/debship/webhook.toml and its credentials first (the unit's comment
// says how). It runs as a DynamicUser, so no user is made at install.
var units = []unit{
	{Name: "debship-webhook.service", Template: "webhook/debship-webhook.service"},
}

type options struct {
	Binary     string
	Version    string
	Output     string
	Maintainer string
	Epoch      int64
}

func main() {
	var o options
	flag.StringVar(&o.Binary, "binary", "bin/debship", "the debship binary to package")
	flag.StringVar(&o.Version, "version", "", "debship version (a tag such as v0.1.0, or git describe output)")
	flag.StringVar(&o.Output, "output", "dist", "output directory")
	flag.StringVar(&o.Maintainer, "maintainer", "debship maintainers <maintainers@debship.invalid>", "Maintainer field")
	flag.Parse()
	if flag.NArg() != 0 || o.Version == "" {
		fmt.Fprintln(os.Stderr, "usage: debship-deb --binary bin/debship --version VERSION [--output dist]")
		os.Exit(2)
	}
	p, err := build(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "debship-deb: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(p)
}

var (
	tagRE      = regexp.MustCompile(`^v?([0-9]+(?:\.[0-9]+)*(?:[-.]?(?:a|b|rc)[0-9]*)?)$`)
	describeRE = regexp.MustCompile(`^v?(.+)-([0-9]+)-g([0-9a-f]+)$`)
	hashRE     = regexp.MustCompile(`^[0-9a-f]{7,40}$`)
)

// DebianVersion maps what `git describe --tags --always --dirty` says to a
// Debian version that sorts right: v0.2.0 → 0.2, three commits later
// 0.2+git3.gabc1234, an untagged commit 0~git.abc1234, "-dirty" appended
// as ".dirty". The tag part goes through debbuild's PEP 440 mapping, the
// same as every package debship builds.
func DebianVersion(v string) (string, error) {
	dirty := strings.HasSuffix(v, "-dirty")
	v = strings.TrimSuffix(v, "-dirty")
	var out string
	switch {
	// `git describe --always` without tags prints an abbreviated hash, and
	// one like "41b2631" would otherwise pass for version 41 beta 2631.
	case hashRE.MatchString(v) && strings.ContainsAny(v, "abcdef"):
		out = "0~git." + v
	case tagRE.MatchString(v):
		up, err := debversion.DebianVersion(v)
		if err != nil {
			return "", err
		}
		out = up
	case describeRE.MatchString(v):
		m := describeRE.FindStringSubmatch(v)
		up, err := debversion.DebianVersion(m[1])
		if err != nil {
			return "", fmt.Errorf("version %q: the tag part: %w", v, err)
		}
		out = up + "+git" + m[2] + ".g" + m[3]
	case hashRE.MatchString(v):
		out = "0~git." + v
	case v == "dev":
		out = "0~dev"
	default:
		return "", fmt.Errorf("version %q is neither a tag such as v1.2.3 nor git describe output", v)
	}
	if dirty {
		out += ".dirty"
	}
	return out + "-1", nil
}

func build(o options) (string, error) {
	debVersion, err := DebianVersion(o.Version)
	if err != nil {
		return "", err
	}
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("debship binary %s not found: run make build first", o.Binary)
	}
	epoch, err := debbuild.SourceDateEpoch(".", o.Epoch)
	if err != nil {
		return "", err
	}
	mtime := time.Unix(epoch, 0).UTC()
	arch, err := binaryArch(bin)
	if err != nil {
		return "", err
	}

	stage, err := os.MkdirTemp("", "debship-deb")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	put := func(rel string, data []byte, mode fs.FileMode) error {
		p := filepath.Join(stage, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, mode)
	}

	binData, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	if err := put("usr/bin/debship", binData, 0o755); err != nil {
		return "", err
	}
	man, err := manPage(bin, o.Version, mtime)
	if err != nil {
		return "", err
	}
	if err := put("usr/share/man/man1/debship.1.gz", man, 0o644); err != nil {
		return "", err
	}
	comp, err := templates.Raw("ci/debship-deb/bash-completion")
	if err != nil {
		return "", err
	}
	if err := put("usr/share/bash-completion/completions/debship", comp, 0o644); err != nil {
		return "", err
	}
	cp, err := templates.Raw("ci/debship-deb/copyright")
	if err != nil {
		return "", err
	}
	if err := put("usr/share/doc/debship/copyright", cp, 0o644); err != nil {
		return "", err
	}
	cl, err := templates.Render("ci/debship-deb/changelog.Debian", map[string]string{
		"DebianVersion": debVersion, "Source": o.Version, "Maintainer": o.Maintainer, "Date": mtime.Format(time.RFC1123Z),
	})
	if err != nil {
		return "", err
	}
	if err := put("usr/share/doc/debship/changelog.Debian.gz", mustGzip(cl), 0o644); err != nil {
		return "", err
	}
	for _, u := range units {
		b, err := templates.Render(u.Template, map[string]string{"Version": o.Version})
		if err != nil {
			return "", err
		}
		if err := put("lib/systemd/system/"+u.Name, b, 0o644); err != nil {
			return "", err
		}
	}

	scripts := map[string][]byte{}
	var unitNames []string
	for _, u := range units {
		unitNames = append(unitNames, u.Name)
	}
	for _, name := range []string{"postinst", "prerm", "postrm"} {
		b, err := templates.Render("ci/debship-deb/"+name, map[string]any{"Units": unitNames})
		if err != nil {
			return "", err
		}
		scripts[name] = b
	}
	var depends []string
	if dynamic(bin) {
		depends = append(depends, "libc6")
	}
	if err := os.MkdirAll(o.Output, 0o755); err != nil {
		return "", err
	}
	final := filepath.Join(o.Output, debfile.FileName("debship", debVersion, arch))
	err = debfile.WriteTree(stage, final, debfile.TreePackage{
		Name:       "debship",
		Version:    debVersion,
		Arch:       arch,
		Section:    "devel",
		Priority:   "optional",
		Maintainer: o.Maintainer,
		Homepage:   "https://gitlab.com/debship/debship",
		Description: "ship a Python web project as a .deb to a Debian HA cluster\n" +
			"debship builds a reproducible .deb with a bundled virtualenv from\n" +
			"pyproject.toml, writes the GitLab CI pipeline, sets up a two-node\n" +
			"pacemaker cluster over SSH and rolls new versions across it.",
		Depends: depends,
		// What `debship build` runs on the build host; libnss-systemd names
		// the webhook unit's dynamic user (ssh needs a user name).
		Recommends:  []string{"python3", "python3-venv", "python3-pip", "git", "libnss-systemd"},
		Scripts:     scripts,
		Compression: "xz",
		MTime:       mtime,
	})
	if err != nil {
		return "", err
	}
	return final, nil
}

type command struct {
	Name string
	Help []string
}

var commandLineRE = regexp.MustCompile(`^\s{2,}([a-z][a-z0-9-]*)(?:,\s*[a-z0-9-]+)*\s{2,}\S`)

// manPage renders debship.1 from the help the binary prints, for the main
// command and each (sub)command, so the page cannot drift from the code.
func manPage(bin, version string, date time.Time) ([]byte, error) {
	help, err := helpOf(bin)
	if err != nil {
		return nil, err
	}
	var cmds []command
	var walk func(prefix []string, text string) error
	walk = func(prefix []string, text string) error {
		for _, name := range subcommands(text) {
			args := append(append([]string{}, prefix...), name)
			h, err := helpOf(bin, args...)
			if err != nil {
				return err
			}
			cmds = append(cmds, command{Name: "debship " + strings.Join(args, " "), Help: lines(h)})
			if err := walk(args, h); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(nil, help); err != nil {
		return nil, err
	}
	page, err := templates.Render("ci/debship-deb/debship.1", map[string]any{
		"Version": version, "Date": date.Format("2006-01-02"), "Help": lines(help), "Commands": cmds,
	})
	if err != nil {
		return nil, err
	}
	return debfile.GzipN(page)
}

// subcommands reads the COMMANDS: section of urfave/cli's help.
func subcommands(help string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(help, "\n") {
		switch {
		case strings.TrimSpace(l) == "COMMANDS:":
			in = true
		case in && (l == "" || !strings.HasPrefix(l, " ")):
			in = false
		case in:
			if m := commandLineRE.FindStringSubmatch(l); m != nil && m[1] != "help" {
				out = append(out, m[1])
			}
		}
	}
	return out
}

func helpOf(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, append(args, "--help")...)
	// A fixed terminal-independent width and no colours: the page must not
	// depend on who runs make.
	cmd.Env = append(os.Environ(), "COLUMNS=80", "NO_COLOR=1")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s --help: %w", bin, strings.Join(args, " "), err)
	}
	return strings.TrimRight(string(out), "\n"), nil
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.TrimRight(strings.ReplaceAll(l, "\t", "   "), " "))
	}
	return out
}

// dynamic reports whether the binary needs the dynamic loader (cgo), so the
// package must depend on libc6.
func dynamic(bin string) bool {
	f, err := elf.Open(bin)
	if err != nil {
		return true
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// binaryArch is the Debian architecture of a Go binary: the GOARCH (and
// GOARM) it was built for, from its build information, not the packager's.
func binaryArch(bin string) (string, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("%s: cannot tell its architecture: %w", bin, err)
	}
	var goarch, goarm string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOARCH":
			goarch = s.Value
		case "GOARM":
			goarm = s.Value
		}
	}
	arch, ok := debfile.DebArch(goarch, goarm)
	if !ok {
		return "", fmt.Errorf("%s is built for GOARCH=%q, which has no Debian architecture", bin, goarch)
	}
	return arch, nil
}

func mustGzip(b []byte) []byte {
	out, err := debfile.GzipN(b)
	if err != nil {
		panic(err) // compressing into memory cannot fail
	}
	return out
}
