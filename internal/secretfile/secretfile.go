// Package secretfile reads a secret (an API token, a password, a private
// key) from a file that only its owner can use.
//
// The rule, the same one OpenSSH applies to a private key and certbot
// to the keys it writes: the file belongs to the user reading it (or to
// root) and gives its group and other users no permission at all (chmod
// 600 or 400). A group-readable secret is no secret: Debian puts every
// user in groups such as "users", and an operator who wanted to share a
// token would not expect a deploy tool to accept it silently. A
// group-writable one lets others swap the token.
//
// The file is opened once and every check is made on the open file, so
// nothing can be put in its place between the check and the read: no
// stat of a name followed by a second open.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// MaxSize is the largest secret read: a token or a key file is a few
// kilobytes, and a bigger file is the wrong file.
const MaxSize = 1 << 20

// Read returns the content of the secret file at path. Every error is one
// sentence that starts with path and ends with the fix, to follow e.g.
// "the DigitalOcean token file ".
func Read(path string) ([]byte, error) {
	// O_NOFOLLOW: a symbolic link put in the secret's place is refused,
	// not followed. O_NONBLOCK: a FIFO put there does not hang the open
	// (it is refused below as not a regular file). Go adds O_CLOEXEC.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	if err := Check(path, fi); err != nil {
		return nil, err
	}
	if fi.Size() > MaxSize {
		return nil, fmt.Errorf("%s has %d bytes, more than a secret holds (%d at most); name the file that holds just the secret", path, fi.Size(), MaxSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%s grew beyond %d bytes while being read; name the file that holds just the secret", path, MaxSize)
	}
	return b, nil
}

// Check applies the rule to a file already open (fi from its Stat): a
// regular file of the current user or root, without permission for group
// or others.
func Check(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is %s, not a regular file; put the secret in a plain file (chmod 600)", path, kind(fi.Mode()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if me := os.Geteuid(); int(st.Uid) != me && st.Uid != 0 {
			return fmt.Errorf("%s belongs to %s, not to %s, so %s can read or change the secret; chown %s %s",
				path, userName(int(st.Uid)), mine(me), userName(int(st.Uid)), userName(me), path)
		}
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%s %s (mode %04o), but a secret is for its owner alone; chmod 600 %s", path, exposure(m), m, path)
	}
	return nil
}

// openError says what stands in the way of opening path.
func openError(path string, err error) error {
	var errno syscall.Errno
	errors.As(err, &errno)
	switch errno {
	case syscall.ELOOP:
		return fmt.Errorf("%s is a symbolic link, which could be pointed elsewhere behind your back; name the file itself (readlink -f %s)", path, path)
	case syscall.ENOENT:
		return fmt.Errorf("%s does not exist; write the secret into it (chmod 600) or correct the path", path)
	case syscall.EACCES:
		return fmt.Errorf("%s cannot be read by you (%s); run as its owner, or chown %s %s", path, userName(os.Geteuid()), userName(os.Geteuid()), path)
	}
	return fmt.Errorf("%s: %w", path, errors.Unwrap(err))
}

// exposure says who besides the owner may use a file of mode m.
func exposure(m fs.FileMode) string {
	who := "its group"
	switch {
	case m&0o070 != 0 && m&0o007 != 0:
		who = "its group and every user"
	case m&0o007 != 0:
		who = "every user"
	}
	if m&0o044 != 0 {
		return "can be read by " + who
	}
	return "can be changed or run by " + who
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// mine names the owners a secret of user me may have.
func mine(me int) string {
	if me == 0 {
		return "root"
	}
	return "you (" + userName(me) + ") or root"
}

// userName is the login name of uid, or the number when it has none.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}
