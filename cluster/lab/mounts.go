package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mountSource is the "device" name of every mount the lab makes, so that a
// later run finds and removes them from /proc/self/mountinfo even when the
// run that made them was killed and left no state behind.
const mountSource = "debship-lab"

func mountOverlay(lower, upper, work, target string) error {
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount(mountSource, target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

func mountTmpfs(target, opts string) error {
	if err := unix.Mount(mountSource, target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", target, err)
	}
	return nil
}

func mountProc(target string) error {
	if err := unix.Mount(mountSource, target, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc on %s: %w", target, err)
	}
	return nil
}

// bindMount mounts src on target. A bind mount keeps the source's device
// name in mountinfo, so we find it later by its target (see ownMounts).
func bindMount(src, target string) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, target, err)
	}
	return nil
}

type mountInfo struct {
	Target, FSType, Source, SuperOpts string
}

func readMounts() ([]mountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountInfo
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent maj:min root target opts [optional...] - fstype source superopts
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(lf) < 5 || len(rf) < 2 {
			continue
		}
		m := mountInfo{Target: unescapeMount(lf[4]), FSType: rf[0], Source: unescapeMount(rf[1])}
		if len(rf) > 2 {
			m.SuperOpts = rf[2]
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsBelow lists the mount points below dir.
func mountsBelow(dir string) []string {
	ms, _ := readMounts()
	var out []string
	for _, m := range ms {
		if strings.HasPrefix(m.Target, strings.TrimRight(dir, "/")+"/") {
			out = append(out, m.Target)
		}
	}
	return out
}

func isMountpoint(path string) bool {
	ms, err := readMounts()
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.Target == path {
			return true
		}
	}
	return false
}

// unmount removes a mount (all stacked layers), retrying briefly while
// processes that just died release it, then detaching lazily as a last
// resort so that cleanup always finishes.
func unmount(target string) error {
	var err error
	for i := 0; i < 20; i++ {
		err = unix.Unmount(target, 0)
		switch {
		case err == nil && isMountpoint(target):
			continue // another layer below
		case err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			time.Sleep(100 * time.Millisecond)
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// unmountBelow unmounts everything mounted below the given directories,
// deepest first.
func unmountBelow(dirs ...string) error {
	var targets []string
	for _, d := range dirs {
		targets = append(targets, mountsBelow(d)...)
	}
	return unmountEach(targets)
}

// unmountTagged unmounts every mount named mountSource, wherever it is:
// node overlays, nspawn's tmpfs and build mounts of any earlier run.
func unmountTagged() error {
	ms, err := readMounts()
	if err != nil {
		return fmt.Errorf("list mounts: %w", err)
	}
	var targets []string
	for _, m := range ms {
		if m.Source == mountSource {
			targets = append(targets, m.Target)
		}
	}
	return unmountEach(targets)
}

// unmountEach unmounts the targets, deepest first (unmount removes every
// layer stacked on a target, so duplicates are dropped).
func unmountEach(targets []string) error {
	seen := map[string]bool{}
	var uniq []string
	for _, t := range targets {
		if !seen[t] {
			seen[t] = true
			uniq = append(uniq, t)
		}
	}
	sort.Slice(uniq, func(i, j int) bool { return len(uniq[i]) > len(uniq[j]) })
	var errs []error
	for _, t := range uniq {
		if err := unmount(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
