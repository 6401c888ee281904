package inspect

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"gitlab.com/debship/debship/debbuild/buildroot"
	"gitlab.com/debship/debship/debbuild/debversion"
	"gitlab.com/debship/debship/internal/debian"
)

// Lintian runs the lintian of the release the package was built for (its
// version's suffix; an untargeted package is the host's): the host's when
// the host is that release, else the one in that release's cached build
// root (there after one build for it). The result is skipped, with the
// reason, when neither is there.
func (p *Package) Lintian(ctx context.Context) CheckResult {
	r, targeted := debversion.VersionTarget(p.Field("Version"))
	host, hostKnown := debian.Host()
	name := "lintian"
	if targeted {
		name = r.Target + "'s lintian"
	}
	res := CheckResult{Name: name + " reports no errors or warnings"}
	var cmd *exec.Cmd
	switch {
	case !targeted || (hostKnown && host.Suite == r.Suite):
		if _, err := exec.LookPath("lintian"); err != nil {
			return skipped(res, "lintian is not installed (apt-get install lintian)")
		}
		cmd = exec.CommandContext(ctx, "lintian", "--tag-display-limit", "0", p.File)
	default:
		base := buildroot.Base(r)
		if !base.Ready() {
			return skipped(res, fmt.Sprintf("this host is not %s and %s has no %s build root yet (a build for %s makes it)", r.Target, buildroot.Cache, r.Suite, r.Target))
		}
		if os.Geteuid() != 0 {
			return skipped(res, fmt.Sprintf("running %s's lintian in its build root needs root", r.Target))
		}
		br, err := buildroot.Mount(r, base)
		if err != nil {
			return failed(res, err.Error())
		}
		defer br.Close(false)
		data, err := os.ReadFile(p.File)
		if err != nil {
			return failed(res, err.Error())
		}
		in := "/tmp/" + filepath.Base(p.File)
		if err := os.WriteFile(filepath.Join(br.Dir(), in), data, 0o644); err != nil {
			return failed(res, err.Error())
		}
		cmd = exec.CommandContext(ctx, "/usr/bin/lintian", "--tag-display-limit", "0", in)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: br.Dir()}
		cmd.Dir = "/"
		cmd.Env = append(os.Environ(), "TMPDIR=/tmp", "HOME=/root")
	}
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			res.Problems = append(res.Problems, line)
		}
	}
	// lintian exits 2 when it reports errors; anything else is its failure.
	if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 2 && len(res.Problems) > 0) {
		return failed(res, fmt.Sprintf("lintian failed: %v: %s", err, strings.TrimSpace(string(out))))
	}
	res.OK = len(res.Problems) == 0
	return res
}

func skipped(r CheckResult, why string) CheckResult {
	r.OK, r.Skipped, r.Problems = true, true, []string{"not run: " + why}
	return r
}

func failed(r CheckResult, why string) CheckResult {
	r.OK, r.Problems = false, []string{why}
	return r
}
