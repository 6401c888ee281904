package lab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// PrereqError says what the host lacks to run a lab, in one sentence that
// names the Debian packages to install.
type PrereqError struct {
	NotRoot  bool
	Programs []string // missing programs
	Packages []string // the Debian packages that provide them
	Other    []string // anything else (kernel features)
}

func (e *PrereqError) Error() string {
	var parts []string
	if e.NotRoot {
		parts = append(parts, "the lab needs root (it mounts overlays, creates network namespaces and boots containers); run it with sudo")
	}
	if len(e.Programs) > 0 {
		parts = append(parts, fmt.Sprintf("missing %s; install with: apt-get install %s",
			strings.Join(e.Programs, ", "), strings.Join(e.Packages, " ")))
	}
	parts = append(parts, e.Other...)
	return strings.Join(parts, "; ")
}

// hostPrograms maps what the lab runs to the Debian package that ships it.
var hostPrograms = []struct{ program, pkg string }{
	{"debootstrap", "debootstrap"},
	{"systemd-nspawn", "systemd-container"},
	{"ip", "iproute2"},
	{"nsenter", "util-linux"},
	{"chroot", "coreutils"},
	{"ssh", "openssh-client"},
}

// CheckHost reports what the host lacks for a lab, or nil.
func CheckHost() error {
	e := &PrereqError{NotRoot: os.Geteuid() != 0}
	seen := map[string]bool{}
	for _, p := range hostPrograms {
		if _, err := exec.LookPath(p.program); err != nil {
			e.Programs = append(e.Programs, p.program)
			if !seen[p.pkg] {
				e.Packages = append(e.Packages, p.pkg)
				seen[p.pkg] = true
			}
		}
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		e.Other = append(e.Other, "/dev/fuse is missing: the kernel has no FUSE support (modprobe fuse), which gluster needs in the nodes")
	}
	if e.NotRoot || len(e.Programs) > 0 || len(e.Other) > 0 {
		return e
	}
	return nil
}
