package rootfs

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestRunner(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		script  string
		wantLog string // in the log, after the command line
		wantErr string // "" for success
	}{
		{"success is logged", nil, "echo hello", "hello\n", ""},
		{"env is added to the inherited environment", []string{"DEBSHIP_X=1"},
			`test -n "$PATH" && echo "x=$DEBSHIP_X"`, "x=1\n", ""},
		{"a failure carries the end of the output", nil,
			"for i in $(seq 1 40); do echo line$i; done; echo oops >&2; exit 3",
			"", "exit status 3\nline27\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			err := Runner{Log: &log}.Run(context.Background(), tt.env, "sh", "-c", tt.script)
			if !strings.HasPrefix(log.String(), "+ sh -c ") || !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log %q", log.String())
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
			case tt.wantErr != "" && (strings.Contains(err.Error(), "line25\n") || !strings.HasSuffix(err.Error(), "oops")):
				t.Errorf("error is not the last 15 lines:\n%v", err)
			}
		})
	}
}

func TestRunnerCancelStops(t *testing.T) {
	stopped := make(chan struct{})
	var cmd *exec.Cmd
	r := Runner{
		Command: func(argv []string) (*exec.Cmd, error) {
			cmd = exec.Command(argv[0], argv[1:]...)
			return cmd, nil
		},
		Stop: func() error { // as the lab's cgroup kill: the whole tree
			close(stopped)
			return cmd.Process.Kill()
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := r.Run(ctx, nil, "sleep", "30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	select {
	case <-stopped:
	default:
		t.Error("Stop not called")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

func TestRunnerCommandError(t *testing.T) {
	r := Runner{Command: func([]string) (*exec.Cmd, error) { return nil, fmt.Errorf("no cgroup") }}
	if err := r.Run(context.Background(), nil, "true"); err == nil || err.Error() != "true: no cgroup" {
		t.Errorf("got %v", err)
	}
}
