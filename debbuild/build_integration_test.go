package debbuild

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/debbuild/debfile"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/debbuild/inspect"
	"gitlab.com/debship/debship/internal/debian"
	"gitlab.com/debship/debship/internal/debroot"
	"gitlab.com/debship/debship/internal/testenv"
)

const example = "../examples/hello-web"

// exampleRepo is a git repository holding examples/hello-web with one
// earlier release tagged (v1.3.0), as a real project has: the changelog
// lists that release, and the build time is the last commit's time.
func exampleRepo(t *testing.T) string {
	t.Helper()
	testenv.NeedCommand(t, "git", "cp")
	dir := filepath.Join(t.TempDir(), "hello-web")
	run(t, "cp", "-r", example, dir)
	git := func(date string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Test", "-c", "user.email=test@example.org"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	py := filepath.Join(dir, "pyproject.toml")
	cur, err := os.ReadFile(py)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(py, bytes.Replace(cur, []byte(`version = "1.4.0"`), []byte(`version = "1.3.0"`), 1), 0o644)
	git("2026-01-02T10:00:00Z", "init", "-q")
	git("2026-01-02T10:00:00Z", "add", ".")
	git("2026-01-02T10:00:00Z", "commit", "-q", "-m", "release 1.3.0")
	git("2026-01-02T10:00:00Z", "tag", "v1.3.0")
	os.WriteFile(py, cur, 0o644)
	git("2026-02-03T11:00:00Z", "commit", "-q", "-a", "-m", "release 1.4.0")
	return dir
}

// buildExample builds examples/hello-web offline into a new directory.
func buildExample(t *testing.T, ov Overrides, keepStaging bool) *BuildResult {
	t.Helper()
	return buildProject(t, exampleRepo(t), ov, keepStaging)
}

func buildProject(t *testing.T, dir string, ov Overrides, keepStaging bool) *BuildResult {
	t.Helper()
	testenv.NeedFile(t, "/usr/bin/python3")
	spec, err := LoadSpec(dir, ov)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	res, err := Build(context.Background(), spec, BuildOptions{
		Output:      t.TempDir(),
		NoIndex:     true, // no PyPI here: setuptools comes from Debian's python3-setuptools-whl
		KeepStaging: keepStaging,
		Log:         &log,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	if keepStaging {
		t.Cleanup(func() { os.RemoveAll(res.Staging) })
	}
	return res
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestBuildExample(t *testing.T) {
	testenv.NeedCommand(t, "dpkg-deb", "lintian")
	res := buildExample(t, Overrides{}, true)
	version, _ := debversion.VersionFor("1.4-1", "")
	if want := debfile.FileName("hello-web", version, "all"); filepath.Base(res.Path) != want {
		t.Errorf("package file = %s, want %s", filepath.Base(res.Path), want)
	}

	t.Run("dpkg-deb --info", func(t *testing.T) {
		info := run(t, "dpkg-deb", "--info", res.Path)
		for _, want := range []string{
			"Package: hello-web",
			"Version: " + version + "\n",
			"Architecture: all",
			"Maintainer: debship example <example@debship.invalid>",
			"Depends: python3 (>= 3.11), python3 (<< 3.12), adduser",
			"Homepage: https://gitlab.com/debship/debship",
			"Description: Example web site for debship: a stdlib-only WSGI app",
			"X-Debship-Mode: cluster", // the example's pyproject.toml
			" postinst", " prerm", " postrm", " conffiles", " md5sums",
		} {
			if !strings.Contains(info, want) {
				t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
			}
		}
	})

	t.Run("dpkg-deb --contents", func(t *testing.T) {
		contents := run(t, "dpkg-deb", "--contents", res.Path)
		for _, re := range []string{
			`-rwxr-xr-x root/root .* \./opt/venvs/hello-web/bin/hello-web\n`,
			`lrwxrwxrwx root/root .* \./opt/venvs/hello-web/bin/python3 -> /usr/bin/python3\n`,
			`\./opt/venvs/hello-web/pyvenv\.cfg\n`,
			`\./opt/venvs/hello-web/lib/python3\.11/site-packages/hello_web/server\.py\n`,
			`-rw-r--r-- root/root .* \./lib/systemd/system/hello-web\.service\n`,
			`\./usr/bin/hello-web -> /opt/venvs/hello-web/bin/hello-web\n`,
			`\./usr/share/man/man1/hello-web\.1\.gz\n`,
			`\./usr/share/doc/hello-web/copyright\n`,
			`\./usr/share/doc/hello-web/changelog\.Debian\.gz\n`,
			`\./usr/share/lintian/overrides/hello-web\n`,
			`-rw-r--r-- root/root .* \./etc/hello-web/hello-web\.toml\n`,
		} {
			if !regexp.MustCompile(re).MatchString(contents) {
				t.Errorf("dpkg-deb --contents lacks %s", re)
			}
		}
		for _, bad := range []string{"__pycache__", ".pyc", "/pip/", "site-packages/setuptools/", "direct_url.json"} {
			if strings.Contains(contents, bad) {
				t.Errorf("package ships %q", bad)
			}
		}
		// Every entry carries the one timestamp of the build: the last commit's.
		dates := regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d`).FindAllString(contents, -1)
		for _, d := range dates {
			if d != "2026-02-03 11:00" {
				t.Errorf("an entry has mtime %s, want the commit time 2026-02-03 11:00", d)
				break
			}
		}
	})

	t.Run("lintian", func(t *testing.T) {
		out, _ := exec.Command("lintian", "--tag-display-limit", "0", res.Path).CombinedOutput()
		var e, w int
		for _, line := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, "E: "):
				e++
			case strings.HasPrefix(line, "W: "):
				w++
			}
		}
		t.Logf("lintian: %d errors, %d warnings\n%s", e, w, out)
		if e != 0 || w != 0 {
			t.Errorf("lintian reports %d errors and %d warnings, want 0 and 0:\n%s", e, w, out)
		}
	})

	t.Run("no staging path", func(t *testing.T) {
		x := t.TempDir()
		run(t, "dpkg-deb", "-R", res.Path, x)
		out, err := exec.Command("grep", "-r", "-l", "-a", "-F", res.Staging, x).CombinedOutput()
		if err == nil {
			t.Errorf("the staging path %s is in:\n%s", res.Staging, out)
		}
		if len(res.Staging) < 8 {
			t.Fatalf("staging path %q too short to grep for", res.Staging)
		}
	})

	t.Run("inspect --check", func(t *testing.T) {
		p, err := inspect.ReadPackage(res.Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Check() {
			if !c.OK {
				t.Errorf("check %q failed: %v", c.Name, c.Problems)
			}
		}
		if p.Field("Installed-Size") == "" || len(p.Units) != 1 || len(p.Conffiles) != 1 {
			t.Errorf("inspect: Installed-Size=%q units=%d conffiles=%v", p.Field("Installed-Size"), len(p.Units), p.Conffiles)
		}
	})

	t.Run("Installed-Size like dpkg-gencontrol", func(t *testing.T) {
		x := t.TempDir()
		run(t, "dpkg-deb", "-x", res.Path, x)
		// dpkg-gencontrol: each file and symlink in whole KiB, anything else 1 KiB.
		var kib int64
		filepath.Walk(x, func(p string, fi os.FileInfo, err error) error {
			if p == x {
				return nil
			}
			if fi.Mode().IsRegular() || fi.Mode()&os.ModeSymlink != 0 {
				kib += (fi.Size() + 1023) / 1024
			} else {
				kib++
			}
			return nil
		})
		info := run(t, "dpkg-deb", "--field", res.Path, "Installed-Size")
		if strings.TrimSpace(info) != fmt.Sprint(kib) {
			t.Errorf("Installed-Size = %s, dpkg-gencontrol would say %d", strings.TrimSpace(info), kib)
		}
	})
}

func TestBuildReproducible(t *testing.T) {
	dir := exampleRepo(t)
	a := buildProject(t, dir, Overrides{}, false)
	b := buildProject(t, dir, Overrides{}, false)
	ab, _ := os.ReadFile(a.Path)
	bb, _ := os.ReadFile(b.Path)
	if len(ab) == 0 || !bytes.Equal(ab, bb) {
		t.Fatalf("two builds differ: %s (%d bytes) and %s (%d bytes)", a.Path, len(ab), b.Path, len(bb))
	}
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	testenv.NeedCommand(t, "systemd-analyze", "dpkg-deb")
	res := buildExample(t, Overrides{}, false)
	root := debroot.Root(t, hostSuite(t))
	install(t, root, res.Path)
	out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "/lib/systemd/system/hello-web.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze verify: ok %s", out)
}

// TestInstallUpgradePurge installs the example into a clean Debian 12 root,
// runs it, upgrades it with a locally edited conffile, then purges it.
func TestInstallUpgradePurge(t *testing.T) {
	testenv.NeedCommand(t, "dpkg-deb", "chroot")
	dir := exampleRepo(t)
	// Mode systemd (the example's is cluster): installed alone, the
	// package enables and starts its unit.
	v1 := buildProject(t, dir, Overrides{Mode: debfile.ModeSystemd}, false)
	// The next release, as a user makes it: bump the version, commit.
	py := filepath.Join(dir, "pyproject.toml")
	b, _ := os.ReadFile(py)
	os.WriteFile(py, bytes.Replace(b, []byte(`version = "1.4.0"`), []byte(`version = "1.5.0"`), 1), 0o644)
	run(t, "git", "-C", dir, "-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-q", "-a", "-m", "release 1.5.0")
	v2 := buildProject(t, dir, Overrides{Mode: debfile.ModeSystemd}, false)
	root := debroot.Root(t, hostSuite(t))
	chroot := func(args ...string) (string, error) {
		out, err := exec.Command("chroot", append([]string{root}, args...)...).CombinedOutput()
		return string(out), err
	}

	install(t, root, v1.Path)
	if out, err := chroot("getent", "passwd", "hello-web"); err != nil || !strings.Contains(out, "/var/lib/hello-web") {
		t.Errorf("system user hello-web: %v %s", err, out)
	}
	if out, err := chroot("stat", "-c", "%U:%G %a", "/var/lib/hello-web"); err != nil || strings.TrimSpace(out) != "hello-web:hello-web 750" {
		t.Errorf("state dir: %q %v", out, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/hello-web.service")); err != nil {
		t.Errorf("unit not enabled on install: %v", err)
	}
	if out, _ := chroot("sh", "-c", "find /opt/venvs/hello-web -name '*.pyc' | wc -l"); strings.TrimSpace(out) == "0" {
		t.Errorf("postinst did not byte-compile the venv")
	}
	if got := serveHealthz(t, root); got != "ok 1.4.0" {
		t.Errorf("/healthz = %q, want %q", got, "ok 1.4.0")
	}

	conf := filepath.Join(root, "etc/hello-web/hello-web.toml")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "# edited by the admin")
	f.Close()

	install(t, root, v2.Path)
	if b, _ := os.ReadFile(conf); !strings.Contains(string(b), "# edited by the admin") {
		t.Errorf("upgrade lost the local edit of the conffile:\n%s", b)
	}
	if got := serveHealthz(t, root); got != "ok 1.5.0" {
		t.Errorf("after upgrade /healthz = %q, want %q", got, "ok 1.5.0")
	}

	if out, err := chroot("dpkg", "--purge", "hello-web"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	if out, err := chroot("getent", "passwd", "hello-web"); err == nil {
		t.Errorf("purge left the user: %s", out)
	}
	for _, p := range []string{"var/lib/hello-web", "opt/venvs/hello-web", "etc/hello-web", "etc/systemd/system/multi-user.target.wants/hello-web.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("purge left /%s", p)
		}
	}
}

func install(t *testing.T, root, deb string) {
	t.Helper()
	dst := filepath.Join(root, "tmp", filepath.Base(deb))
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("chroot", root, "dpkg", "-i", "/tmp/"+filepath.Base(deb)).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg -i %s: %v\n%s", filepath.Base(deb), err, out)
	}
}

// serveHealthz runs the installed /usr/bin/hello-web in the root as its
// user, on a free loopback port, and returns its /healthz body.
func serveHealthz(t *testing.T, root string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("chroot", "--userspec=hello-web:hello-web", root,
		"/usr/bin/hello-web", "--config", "/etc/hello-web/hello-web.toml", "--port", fmt.Sprint(port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return strings.TrimSpace(string(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("hello-web did not answer on port %d:\n%s", port, out.String())
	return ""
}

// TestBuildRealProject packages a project shaped like real ones: a C
// extension linked against a system library, a dependency installed from a
// local wheel (--find-links, --no-index), package data and two console
// scripts; then runs it in a clean Debian 12 root.
func TestBuildRealProject(t *testing.T) {
	testenv.NeedCommand(t, "gcc", "lintian", "git", "cp", "dpkg-deb")
	testenv.NeedFile(t, "/usr/include/python3.11/Python.h", "/usr/include/zlib.h")
	work := t.TempDir()
	wheels := filepath.Join(work, "wheels")
	run(t, "cp", "-r", "testdata/projects/helperlib", filepath.Join(work, "helperlib"))
	run(t, "/usr/bin/python3", "-m", "pip", "wheel", "-q", "--no-index", "--find-links", "/usr/share/python-wheels",
		"--no-deps", "-w", wheels, filepath.Join(work, "helperlib"))
	dir := filepath.Join(work, "fastapp")
	run(t, "cp", "-r", "testdata/projects/fastapp", dir)
	// Release 2.0.0 tagged, then 2.1.0 committed a day later.
	py := filepath.Join(dir, "pyproject.toml")
	cur, _ := os.ReadFile(py)
	os.WriteFile(py, bytes.Replace(cur, []byte(`version = "2.1.0"`), []byte(`version = "2.0.0"`), 1), 0o644)
	for i, args := range [][]string{{"init", "-q"}, {"add", "."}, {"commit", "-q", "-m", "2.0.0"}, {"tag", "2.0.0"}, {"commit", "-q", "-a", "-m", "2.1.0"}} {
		if i == 4 {
			os.WriteFile(py, cur, 0o644)
		}
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=T", "-c", "user.email=t@example.org"}, args...)...)
		date := fmt.Sprintf("2026-03-0%dT12:00:00Z", 1+i/4) // the release after the tag is a day later
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	spec, err := LoadSpec(dir, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	res, err := Build(context.Background(), spec, BuildOptions{Output: t.TempDir(), NoIndex: true, FindLinks: []string{wheels}, Log: &log})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	version, _ := debversion.VersionFor("2.1-1", "")
	if want := debfile.FileName("fastapp", version, debfile.HostArch()); filepath.Base(res.Path) != want {
		t.Errorf("package = %s, want %s", filepath.Base(res.Path), want)
	}
	depends := run(t, "dpkg-deb", "--field", res.Path, "Depends")
	for _, want := range []string{"python3 (>= 3.11)", "libc6", "zlib1g"} {
		if !strings.Contains(depends, want) {
			t.Errorf("Depends %q lacks %s (from the extension's NEEDED libraries)", strings.TrimSpace(depends), want)
		}
	}
	out, _ := exec.Command("lintian", "--tag-display-limit", "0", res.Path).CombinedOutput()
	if regexp.MustCompile(`(?m)^[EW]: `).Match(out) {
		t.Errorf("lintian:\n%s", out)
	}
	p, err := inspect.ReadPackage(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Check() {
		if !c.OK {
			t.Errorf("check %q: %v", c.Name, c.Problems)
		}
	}
	root := debroot.Root(t, hostSuite(t))
	install(t, root, res.Path)
	got, err := exec.Command("chroot", root, "/usr/bin/fastapp").CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "crc 907060870 k 1 hi from helperlib" {
		t.Errorf("fastapp in the clean root: %v %q", err, got)
	}
}

// hostSuite is the release of the host, whose python3 builds by default.
func hostSuite(t *testing.T) string {
	t.Helper()
	r, ok := debian.Host()
	if !ok {
		testenv.Missing(t, "the host is no Debian release debship knows (/etc/os-release)")
	}
	return r.Suite
}

// TestBuildForEachTarget is the acceptance of the build targets on any
// host: for every release, examples/hello-web (a project with no release
// tag yet) is built offline for it, which on another release's host runs
// in that release's build root; the package names that release's Python,
// says it is for that release, passes that release's lintian with 0 errors
// and 0 warnings, and installs and serves /healthz in a clean root of it.
func TestBuildForEachTarget(t *testing.T) {
	testenv.NeedLong(t, "builds in and installs into a Debian root of each release")
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "debootstrap", "chroot", "dpkg-deb", "cp")
	for _, r := range debian.Releases {
		t.Run(r.Target, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hello-web")
			run(t, "cp", "-r", example, dir)
			spec, err := LoadSpec(dir, Overrides{})
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			start := time.Now()
			res, err := Build(t.Context(), spec, BuildOptions{Output: t.TempDir(), NoIndex: true, Target: r.Target, Log: &log})
			if err != nil {
				t.Fatalf("build for %s: %v\n%s", r.Target, err, log.String())
			}
			t.Logf("built %s in %.1fs", filepath.Base(res.Path), time.Since(start).Seconds())
			if want := debfile.FileName("hello-web", debversion.TargetVersion("1.4-1", r), "all"); filepath.Base(res.Path) != want || res.Target != r.Target {
				t.Errorf("built %s for %q, want %s for %s", filepath.Base(res.Path), res.Target, want, r.Target)
			}
			major, minor, _ := strings.Cut(r.Python, ".")
			next, _ := strconv.Atoi(minor)
			for _, want := range []string{
				"python3 (>= " + r.Python + ")",
				fmt.Sprintf("python3 (<< %s.%d)", major, next+1),
			} {
				if !slices.Contains(res.Depends, want) {
					t.Errorf("Depends %v lacks %s", res.Depends, want)
				}
			}
			p, err := inspect.ReadPackage(res.Path)
			if err != nil {
				t.Fatal(err)
			}
			if p.Target != r.Target {
				t.Errorf("inspect says built for %q, want %s", p.Target, r.Target)
			}
			if _, ok := p.FileContent(strings.TrimPrefix(r.UnitDir, "/") + "/hello-web.service"); !ok {
				t.Errorf("no unit in %s", r.UnitDir)
			}
			for _, c := range append(p.Check(), p.Lintian(t.Context())) {
				if !c.OK || c.Skipped {
					t.Errorf("check %q: ok %v, skipped %v: %v", c.Name, c.OK, c.Skipped, c.Problems)
				}
			}
			root := debroot.Root(t, r.Suite)
			install(t, root, res.Path)
			if got := serveHealthz(t, root); got != "ok 1.4.0" {
				t.Errorf("/healthz in a clean %s root = %q, want %q", r.Suite, got, "ok 1.4.0")
			}
		})
	}
}

// A failing build leaves neither a .deb, nor a temp file, nor the staging
// directory behind.
func TestFailedBuildLeavesNothing(t *testing.T) {
	testenv.NeedFile(t, "/usr/bin/python3")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir := exampleRepo(t)
	py := filepath.Join(dir, "pyproject.toml")
	b, _ := os.ReadFile(py)
	// The wheel build fails: a syntax error in setup configuration.
	os.WriteFile(py, []byte(strings.Replace(string(b), `build-backend = "setuptools.build_meta"`, `build-backend = "no_such_backend"`, 1)), 0o644)
	spec, err := LoadSpec(dir, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	_, err = Build(t.Context(), spec, BuildOptions{Output: out, NoIndex: true})
	if err == nil || !strings.Contains(err.Error(), "no_such_backend") {
		t.Fatalf("build error = %v; want pip's last lines naming the backend", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("output dir has %d entries after a failed build", len(ents))
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("temp dir keeps %v after a failed build", names)
	}
}
