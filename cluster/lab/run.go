package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// run executes a host command and returns its combined output. On failure
// the error carries the command line and the tail of its output, so the
// reason reaches the user without digging through logs.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), cmdError(name, args, err, out.Bytes())
	}
	return out.Bytes(), nil
}

func cmdError(name string, args []string, err error, out []byte) error {
	line := strings.TrimSpace(name + " " + strings.Join(args, " "))
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
