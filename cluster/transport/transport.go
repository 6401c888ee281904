// Package transport runs commands on cluster nodes: over SSH for real
// servers and the lab, locally for unit tests. Every command runs as root:
// the SSH transport wraps it in `sudo -n` when it logs in as another user.
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Transport is one node's connection. It is safe for concurrent use.
type Transport interface {
	// Node is the node's name, used in messages.
	Node() string
	// Run runs a shell command (sh -c) as root. A non-zero exit is a
	// *CommandError carrying the command, its exit code and stderr.
	Run(ctx context.Context, cmd string) (stdout, stderr []byte, err error)
	// Upload writes data to path atomically (temp file and rename in the same
	// directory) as root with the given mode, creating missing directories.
	Upload(ctx context.Context, path string, data []byte, mode os.FileMode) error
	// Close ends the connection.
	Close() error
}

// CommandError is a command that ran and failed.
type CommandError struct {
	Node     string
	Cmd      string
	ExitCode int // -1 when it died by a signal or the session broke
	Stdout   string
	Stderr   string
}

func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = strings.TrimSpace(e.Stdout)
	}
	msg = tail(msg, 20)
	cmd := e.Cmd
	if len(cmd) > 300 {
		cmd = cmd[:300] + "…"
	}
	s := fmt.Sprintf("%s: `%s` exited with %d", e.Node, cmd, e.ExitCode)
	if e.ExitCode < 0 {
		s = fmt.Sprintf("%s: `%s` was killed or lost its session", e.Node, cmd)
	}
	if msg != "" {
		s += ":\n" + indent(msg, "    ")
	}
	return s
}

// ExitCode returns the exit code of a failed command, or -1 when err is not
// a *CommandError.
func ExitCode(err error) int {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	return -1
}

// Output runs cmd and returns its trimmed stdout.
func Output(ctx context.Context, t Transport, cmd string) (string, error) {
	out, _, err := t.Run(ctx, cmd)
	return strings.TrimSpace(string(out)), err
}

// Quote quotes s for POSIX sh.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// Prefixed returns a writer that starts every line with "node | ", for
// output of several nodes interleaved on one terminal. Writes from several
// goroutines through writers sharing w are serialised per line.
func Prefixed(w io.Writer, node string) io.Writer {
	return &prefixWriter{w: w, prefix: node + " | "}
}

var prefixMu sync.Mutex

type prefixWriter struct {
	w       io.Writer
	prefix  string
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := strings.IndexByte(string(p.partial), '\n')
		if i < 0 {
			break
		}
		line := p.partial[:i+1]
		prefixMu.Lock()
		_, err := io.WriteString(p.w, p.prefix+string(line))
		prefixMu.Unlock()
		p.partial = p.partial[i+1:]
		if err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = append([]string{"…"}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}

// uploadScript writes stdin to path via a temp file in the same directory.
// mktemp makes the temp file with a new random name and O_EXCL, so a
// symbolic link (or anything else) already sitting beside the target is
// never written through; the data lands in a file of mode 0600 and gets
// its mode and root's ownership (a setgid directory would give it another
// group) before mv puts it in place. mv -T replaces a link at path instead
// of following it, and refuses a directory there rather than moving the
// file into it. The chown is for root, which runs every upload on a node
// (sudo -n); the tests' SSH server runs it as the user.
func uploadScript(path string, mode os.FileMode) string {
	dir := path[:strings.LastIndexByte(path, '/')+1]
	if dir == "" {
		dir = "./"
	}
	return fmt.Sprintf("set -e; mkdir -p %s; umask 077; tmp=$(mktemp %s); trap 'rm -f -- \"$tmp\"' EXIT; "+
		"cat > \"$tmp\"; chmod %04o \"$tmp\"; if [ \"$(id -u)\" = 0 ]; then chown 0:0 \"$tmp\"; fi; mv -f -T -- \"$tmp\" %s",
		Quote(dir), Quote(dir+uploadTempPrefix+"XXXXXXXXXX"), mode.Perm(), Quote(path))
}

// uploadTempPrefix starts the name of an upload's temp file.
const uploadTempPrefix = ".debship-upload."
