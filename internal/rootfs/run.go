package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Runner runs host commands, such as the steps of a build: each is appended
// to Log after its command line, and a failure carries the end of its
// output, so that the reason reaches the user without digging through logs.
// The zero value runs plain commands and discards their output.
type Runner struct {
	Log io.Writer // nil: discard
	// Command makes the (not started) command for argv; nil: exec.Command.
	// The lab starts its build steps in a cgroup of their own.
	Command func(argv []string) (*exec.Cmd, error)
	// Stop ends what a cancelled command left running; nil: kill its
	// process. Killing one process misses grandchildren (dpkg under apt
	// under chroot), which the lab gets by killing the cgroup.
	Stop func() error
}

// Run runs argv with env added to the environment until it exits or ctx
// is done.
func (r Runner) Run(ctx context.Context, env []string, argv ...string) error {
	if len(argv) == 0 {
		return errors.New("run: no command")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	var cmd *exec.Cmd
	if r.Command == nil {
		cmd = exec.Command(argv[0], argv[1:]...)
	} else {
		var err error
		if cmd, err = r.Command(argv); err != nil {
			return fmt.Errorf("%s: %w", argv[0], err)
		}
	}
	if len(env) > 0 {
		if cmd.Env == nil { // nil inherits the environment; a list replaces it
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, env...)
	}
	log := r.Log
	if log == nil {
		log = io.Discard
	}
	tail := &tailBuffer{max: 4096}
	cmd.Stdout = io.MultiWriter(log, tail)
	cmd.Stderr = cmd.Stdout
	fmt.Fprintf(log, "+ %s\n", strings.Join(argv, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		if r.Stop != nil {
			_ = r.Stop()
		} else {
			_ = cmd.Process.Kill()
		}
		<-done
		err = ctx.Err()
	}
	if err != nil {
		return cmdError(argv, err, tail.Bytes())
	}
	return nil
}

func cmdError(argv []string, err error, out []byte) error {
	line := strings.Join(argv, " ")
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	msg := strings.TrimSpace(string(out))
	if lines := strings.Split(msg, "\n"); len(lines) > 15 {
		msg = strings.Join(lines[len(lines)-15:], "\n")
	}
	if msg == "" {
		return fmt.Errorf("%s: %w", line, err)
	}
	return fmt.Errorf("%s: %w\n%s", line, err, msg)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return t.buf }
