package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"gitlab.com/debship/debship/cluster/deploy"
	"gitlab.com/debship/debship/cluster/inventory/inventorytest"
	"gitlab.com/debship/debship/cluster/progress"
	"gitlab.com/debship/debship/cluster/setup"
)

// Setup and deploy report with one event type, so one reader reads the
// --json of cluster plan, cluster apply and deploy.
func TestSetupAndDeployShareEvents(t *testing.T) {
	want := reflect.TypeOf((*progress.Progress)(nil)).Elem()
	for _, o := range []any{deploy.Options{}, setup.Options{}} {
		f, ok := reflect.TypeOf(o).FieldByName("Progress")
		if !ok || f.Type != want {
			t.Errorf("%T.Progress is %v, want %v", o, f.Type, want)
		}
	}
	// Each one's result, in the same event, decodes as its own type.
	var b bytes.Buffer
	p := progress.JSONProgress(&b)
	p.Event(progress.Event{Type: progress.EventResult, Result: &deploy.Result{Outcome: deploy.OutcomeSuccess}})
	p.Event(progress.Event{Type: progress.EventResult, Result: &setup.Summary{Mode: setup.ModeApply, Outcome: setup.OutcomeSuccess}})
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var e struct {
			progress.Event
			Result struct{ Outcome string } `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Result.Outcome != "success" {
			t.Errorf("%s: %v", line, err)
		}
	}
}

// The example lines in the help of plan and apply are events as
// JSONProgress writes them.
func TestClusterJSONExamples(t *testing.T) {
	for _, ex := range []string{planExample, applyExample} {
		ex = strings.TrimSpace(ex)
		var e progress.Event
		dec := json.NewDecoder(strings.NewReader(ex))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s: %v", ex, err)
		}
		var b bytes.Buffer
		progress.JSONProgress(&b).Event(e)
		if got := strings.TrimSpace(b.String()); got != ex {
			t.Errorf("example\n%s\nwritten as\n%s", ex, got)
		}
	}
	for _, c := range []*cli.Command{clusterPlanCommand(), clusterApplyCommand()} {
		if !strings.Contains(c.Description, "--json") || !strings.Contains(c.Description, `{"time":`) {
			t.Errorf("cluster %s: the help does not show --json", c.Name)
		}
	}
}

// With --json, stdout has events only, also when no node can be connected
// to (no SSH key, or nobody listens): the warning, then the result; the
// error goes to stderr, the exit code is 1.
func TestClusterJSONOnlyEvents(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nobody answers there
	inv := inventorytest.Write(t, t.TempDir(), fmt.Sprintf(`name = "test"
[ssh]
user = "admin"
port = %d
[[node]]
name = "node1"
address = "127.0.0.1"
[[node]]
name = "node2"
address = "127.0.0.2"
[floating-ip]
address = "127.0.0.100/8"
interface = "lo"
[app]
package = "hello-web"
port = 8080
[fencing]
accept-no-fencing = true
`, port))
	for _, cmd := range []string{"plan", "apply"} {
		t.Run(cmd, func(t *testing.T) {
			stdout, stderr, code := capture(t, []string{"debship", "cluster", cmd, "-i", inv, "--json", "--connect-timeout", "1s"})
			if code != exitFailure || !strings.HasPrefix(stderr, "debship: node1: ") {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
			var types []string
			var last struct {
				progress.Event
				Result *setup.Summary `json:"result"`
			}
			sc := bufio.NewScanner(strings.NewReader(stdout))
			for sc.Scan() {
				dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
				dec.DisallowUnknownFields()
				last.Result = nil
				if err := dec.Decode(&last); err != nil {
					t.Fatalf("stdout line %q: %v", sc.Text(), err)
				}
				types = append(types, last.Type)
			}
			if strings.Join(types, " ") != "log result" { // NO FENCING
				t.Errorf("events %q:\n%s", types, stdout)
			}
			if s := last.Result; s == nil || s.Mode != cmd || s.Outcome != setup.OutcomeFailed || len(s.Phases) != 0 {
				t.Errorf("result %+v", s)
			}
		})
	}
}

// capture runs debship with args and returns its stdout, stderr and exit
// code.
func capture(t *testing.T, args []string) (string, string, int) {
	t.Helper()
	read := func(f **os.File) func() string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		old := *f
		*f = w
		out := make(chan string)
		go func() { b, _ := io.ReadAll(r); out <- string(b) }()
		return func() string { w.Close(); *f = old; return <-out }
	}
	stdout, stderr := read(&os.Stdout), read(&os.Stderr)
	code := run(args)
	return stdout(), stderr(), code
}
