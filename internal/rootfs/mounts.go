package rootfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Every mount made here carries a tag as its "device" name, so that a later
// run finds and removes its mounts in /proc/self/mountinfo even when the run
// that made them was killed and left no state behind (UnmountTagged). Each
// user has its own tag: the lab's cleanup must not unmount a test's root.

// mountOverlay mounts an overlay of lower (read-only) and upper on target.
func mountOverlay(tag, lower, upper, work, target string) error {
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount(tag, target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

// MountProc mounts a proc file system on target, which maintainer scripts
// run in a chroot expect.
func MountProc(tag, target string) error {
	if err := unix.Mount(tag, target, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc on %s: %w", target, err)
	}
	return nil
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Target, FSType, Source, SuperOpts string
}

// Mounts lists the mounts this process sees.
func Mounts() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	defer f.Close()
	ms, err := parseMountInfo(f)
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	return ms, nil
}

func parseMountInfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
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
		m := Mount{Target: unescapeMount(lf[4]), FSType: rf[0], Source: unescapeMount(rf[1])}
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

// MountsBelow lists the mount points below dir.
func MountsBelow(dir string) []string {
	ms, _ := Mounts()
	var out []string
	for _, m := range ms {
		if strings.HasPrefix(m.Target, strings.TrimRight(dir, "/")+"/") {
			out = append(out, m.Target)
		}
	}
	return out
}

// IsMountpoint reports whether something is mounted on path.
func IsMountpoint(path string) bool {
	ms, err := Mounts()
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

// Unmount removes a mount (all stacked layers), retrying briefly while
// processes that just died release it, then detaching lazily as a last
// resort so that cleanup always finishes.
func Unmount(target string) error {
	var err error
	for i := 0; i < 20; i++ {
		err = unix.Unmount(target, 0)
		switch {
		case err == nil && IsMountpoint(target):
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

// UnmountBelow unmounts everything mounted below the given directories,
// deepest first.
func UnmountBelow(dirs ...string) error {
	var targets []string
	for _, d := range dirs {
		targets = append(targets, MountsBelow(d)...)
	}
	return unmountEach(targets)
}

// UnmountTagged unmounts every mount made with tag, wherever it is.
func UnmountTagged(tag string) error {
	ms, err := Mounts()
	if err != nil {
		return err
	}
	var targets []string
	for _, m := range ms {
		if m.Source == tag {
			targets = append(targets, m.Target)
		}
	}
	return unmountEach(targets)
}

// unmountEach unmounts the targets, deepest first (Unmount removes every
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
		if err := Unmount(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// BindMount makes the directory src visible at target (created if
// missing), as a build root sees the project it builds. Remove it with
// Unmount or UnmountBelow.
func BindMount(src, target string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("bind mount %s: %w", src, err)
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", src, target, err)
	}
	return nil
}
