package transport

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
)

// Local runs commands on this machine with sh -c, as the current user. It
// is for unit tests and for a node that is the machine itself. Root, when
// set, is prepended to Upload paths, so tests can write into a directory
// instead of /.
type Local struct {
	Name string
	Root string
	Env  []string // extra environment
}

// Node implements Transport.
func (l *Local) Node() string { return l.Name }

// Close implements Transport.
func (l *Local) Close() error { return nil }

// Run implements Transport.
func (l *Local) Run(ctx context.Context, cmd string) ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Stdout, c.Stderr = &stdout, &stderr
	c.Env = append(os.Environ(), l.Env...)
	err := c.Run()
	if err == nil {
		return stdout.Bytes(), stderr.Bytes(), nil
	}
	ce := &CommandError{Node: l.Name, Cmd: cmd, ExitCode: -1, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ce.ExitCode = ee.ExitCode()
	} else {
		ce.Stderr += "\n" + err.Error()
	}
	return stdout.Bytes(), stderr.Bytes(), ce
}

// Upload implements Transport.
func (l *Local) Upload(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	p := filepath.Join(l.Root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	// A new name made with O_EXCL, as uploadScript's mktemp: nothing
	// already there is written through.
	f, err := os.CreateTemp(filepath.Dir(p), uploadTempPrefix+"*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	return err
}
