// Package rootfs makes minimal Debian roots: the host's mirrors, a cached
// debootstrap base per suite, overlay mounts on it.
//
// The lab boots its nodes from such a base and tests install packages into
// one; both build it the same way, so a base that works for one is built by
// code the other exercises too. Everything takes the Debian suite as an
// argument: the release debship targets is a caller's choice, not this
// package's.
package rootfs
