package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/templates"
)

// pythonSample is a line of urllib3_client.py's output.
type pythonSample struct {
	StartNS   int64  `json:"start_ns"`
	LatencyNS int64  `json:"latency_ns"`
	Status    int    `json:"status"`
	Err       string `json:"err"`
	Reused    bool   `json:"reused"`
	Host      string `json:"host"`
	Version   string `json:"version"`
}

// urllib3Attempts is a request's first attempt and Retry.DEFAULT's 3
// retries: the longest a request can take is this many timeouts.
const urllib3Attempts = 4

// runPython runs the urllib3 client until ctx ends (Stop, Duration) and
// adds its samples as they arrive, so that Samples sees a running load.
func (l *Load) runPython(ctx context.Context) {
	fail := func(err error) { l.add(Sample{Start: time.Now(), Err: "urllib3 client: " + err.Error()}) }
	script, err := templates.Raw("loadgen/urllib3_client.py")
	if err != nil {
		fail(err)
		return
	}
	opts, err := json.Marshal(map[string]any{
		"url":           l.o.URL,
		"rate":          l.o.Rate,
		"timeout":       l.o.Timeout.Seconds(),
		"duration":      l.o.Duration.Seconds(),
		"max_requests":  l.o.MaxRequests,
		"max_in_flight": l.o.MaxInFlight,
		"pool_size":     PoolSize,
	})
	if err != nil {
		fail(err)
		return
	}
	// -I: neither PYTHON* variables nor a user's site-packages choose the
	// urllib3 that is measured.
	cmd := exec.CommandContext(ctx, Python, "-I", "-c", string(script), string(opts))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fail(err)
		return
	}
	// Closing stdin stops the script from starting requests; those in
	// flight end within their attempts' timeouts, or are killed after.
	cmd.Cancel = stdin.Close
	cmd.WaitDelay = urllib3Attempts*l.o.Timeout + 5*time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fail(err)
		return
	}
	stderr := &tail{max: 4 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		fail(err)
		return
	}
	sc := bufio.NewScanner(stdout)
	var bad error
	for sc.Scan() {
		var p pythonSample
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			if bad == nil {
				bad = fmt.Errorf("output line %q: %w", sc.Text(), err)
			}
			continue
		}
		l.add(Sample{
			Start: time.Unix(0, p.StartNS), Latency: time.Duration(p.LatencyNS),
			Status: p.Status, Err: p.Err, Reused: p.Reused, Host: p.Host, Version: p.Version,
		})
	}
	if err := sc.Err(); err != nil {
		bad = fmt.Errorf("reading its output: %w", err)
		_, _ = io.Copy(io.Discard, stdout) // the script must not block on a full pipe
	}
	err = cmd.Wait()
	ps := cmd.ProcessState
	switch {
	case ps != nil && ps.Success():
		// Wait's error is then the stop (ctx) or a stdout held open after
		// the exit: nothing was lost.
	case ps != nil && !ps.Exited() && ctx.Err() != nil:
		fail(fmt.Errorf("killed with requests in flight %s after the load ended: %w: %s", cmd.WaitDelay, err, strings.TrimSpace(stderr.String())))
	case err != nil:
		fail(fmt.Errorf("%s: %w: %s", Python, err, strings.TrimSpace(stderr.String())))
	}
	if bad != nil {
		fail(bad)
	}
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
