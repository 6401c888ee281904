package venv

import (
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// normalizeModes makes permissions independent of the build host's umask:
// directories 0755, files 0755 when anything may execute them, else 0644.
// pip derives modes from the umask, and CI runners differ (022 vs 002).
func normalizeModes(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var want fs.FileMode
		switch {
		case d.IsDir():
			want = 0o755
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			want = 0o644
			if info.Mode().Perm()&0o111 != 0 {
				want = 0o755
			}
			if info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == 0 && info.Mode().Perm() == want {
				return nil
			}
		default:
			return nil // symlink modes mean nothing on Linux
		}
		return os.Chmod(p, want)
	})
}

// clampTimes sets the mtime (and atime) of every file, dir and symlink under
// root, and root itself, to epoch. Everything in the venv was made by this
// build, so setting rather than only lowering gives the same tree even when
// epoch lies in the future.
func clampTimes(root string, epoch int64) error {
	ts := []unix.Timespec{{Sec: epoch}, {Sec: epoch}}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// AT_SYMLINK_NOFOLLOW: a symlink's own time, not its target's (which
		// for bin/python is the system interpreter).
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "utimensat", Path: p, Err: err}
		}
		return nil
	})
}
