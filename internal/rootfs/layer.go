package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
)

// Layer is a writable overlay on a base root, so that every user of the
// base starts from the same clean root and the base itself never changes.
// Its directories live in Dir: upper and work (overlayfs's) and root (the
// merged root to chroot or boot into).
type Layer struct{ Dir string }

func (l Layer) Upper() string { return filepath.Join(l.Dir, "upper") }
func (l Layer) Work() string  { return filepath.Join(l.Dir, "work") }
func (l Layer) Root() string  { return filepath.Join(l.Dir, "root") }

// Mount mounts the layer over base on Root, unless it is mounted already
// (a lab node keeps its layer across reboots).
func (l Layer) Mount(tag, base string) error {
	for _, d := range []string{l.Upper(), l.Work(), l.Root()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("overlay layer: %w", err)
		}
	}
	if IsMountpoint(l.Root()) {
		return nil
	}
	return mountOverlay(tag, base, l.Upper(), l.Work(), l.Root())
}

// Unmount unmounts Root and everything mounted inside it (proc, binds).
func (l Layer) Unmount() error {
	return UnmountBelow(l.Dir)
}
