package setup

import (
	"encoding/xml"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/fakedigitalocean"
	"gitlab.com/debship/debship/internal/testenv"
	"gitlab.com/debship/debship/templates"
)

// doNode runs the shipped resource agent as pacemaker would on one droplet.
type doNode struct {
	t                        *testing.T
	agent, state, token, api string
	metadata                 string
}

func (n doNode) run(action string, env ...string) (int, string) {
	n.t.Helper()
	cmd := exec.Command("python3", n.agent, action)
	cmd.Env = append(os.Environ(),
		"OCF_RESKEY_ip=198.51.100.20",
		"OCF_RESKEY_api_url="+n.api,
		"OCF_RESKEY_metadata_url="+n.metadata+"/metadata/v1",
		"OCF_RESKEY_token_file="+n.token,
		"OCF_RESKEY_state_dir="+n.state,
		"OCF_RESKEY_CRM_meta_timeout=20000",
		"OCF_RESKEY_poll_interval=0.05",
	)
	cmd.Env = append(cmd.Env, env...) // the last of a name wins
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		n.t.Fatal(err)
	}
	return 0, string(out)
}

func (n doNode) want(action string, code int, env ...string) string {
	n.t.Helper()
	got, out := n.run(action, env...)
	if got != code {
		n.t.Fatalf("%s: exit %d, want %d\n%s", action, got, code, out)
	}
	return out
}

// TestDOReservedIPAgent runs the DigitalOcean agent against the fake API
// (internal/fakedigitalocean, which follows DigitalOcean's documented API).
func TestDOReservedIPAgent(t *testing.T) {
	testenv.NeedCommand(t, "python3")
	dir := t.TempDir()
	agent := writeAgent(t, dir, "do-reserved-ip")
	token := writeFile(t, dir, "token", "dop_v1_secret\n", 0o600)

	api := fakedigitalocean.NewServer("dop_v1_secret", "198.51.100.20")
	defer api.Close()
	node := func(name string, droplet int) doNode {
		md := fakedigitalocean.Metadata(droplet)
		t.Cleanup(md.Close)
		st := filepath.Join(dir, name)
		os.MkdirAll(st, 0o755)
		return doNode{t: t, agent: agent, state: st, token: token, api: api.URL, metadata: md.URL}
	}
	a, b2 := node("a", 101), node("b", 102)

	var meta struct {
		Name    string `xml:"name,attr"`
		Actions []struct {
			Name string `xml:"name,attr"`
		} `xml:"actions>action"`
	}
	if err := xml.Unmarshal([]byte(a.want("meta-data", 0)), &meta); err != nil || meta.Name != "do-reserved-ip" || len(meta.Actions) != 5 {
		t.Fatalf("meta-data: %+v %v", meta, err)
	}
	a.want("validate-all", 0)
	a.want("monitor", 7) // not started here
	if api.Holder("198.51.100.20") != 0 {
		t.Fatal("monitor changed the assignment")
	}

	a.want("start", 0)
	if h := api.Holder("198.51.100.20"); h != 101 {
		t.Fatalf("after start on a: holder %d", h)
	}
	a.want("monitor", 0)
	a.want("start", 0) // already ours: no new action
	if posts := api.Count("POST /v2/reserved_ips/198.51.100.20/actions"); posts != 1 {
		t.Errorf("%d assign actions for 2 starts: %v", posts, api.Requests())
	}

	// Failover: b takes it; a's monitor notices it lost it.
	api.FailNext(http.StatusTooManyRequests, 1)
	b2.want("start", 0)
	if h := api.Holder("198.51.100.20"); h != 102 {
		t.Fatalf("after start on b: holder %d", h)
	}
	a.want("monitor", 7)
	b2.want("monitor", 0)
	a.want("stop", 0)
	a.want("monitor", 7)

	// Locked by another action: retried until it is free.
	api.FailNext(http.StatusUnprocessableEntity, 2)
	a.want("start", 0)
	if h := api.Holder("198.51.100.20"); h != 101 {
		t.Fatalf("after the retried start on a: holder %d", h)
	}

	// An API outage is tolerated by monitor for api_error_tolerance
	// seconds, each failure logged; then monitor fails.
	for _, tc := range []struct {
		name   string
		fail   func()
		clear  func()
		logged string
	}{
		{"429", func() { api.Fail(http.StatusTooManyRequests, time.Hour) }, func() { api.Fail(0, 0) }, "HTTP 429 (API Rate limit exceeded.)"},
		{"503", func() { api.Fail(http.StatusServiceUnavailable, time.Hour) }, func() { api.Fail(0, 0) }, "HTTP 503"},
		{"no answer", func() { api.Fail(0, time.Hour) }, func() { api.Fail(0, 0) }, "timed out"},
		{"connection refused", func() { a.api = "http://127.0.0.1:1" }, func() { a.api = api.URL }, "Connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.want("monitor", 0)
			tc.fail()
			began := time.Now()
			out := a.want("monitor", 0, "OCF_RESKEY_api_error_tolerance=3", "OCF_RESKEY_CRM_meta_timeout=6000")
			if !strings.Contains(out, tc.logged) || !strings.Contains(out, "tolerated for 3s") {
				t.Errorf("monitor during the outage: %s", out)
			}
			if d := time.Since(began); d > 3*time.Second {
				t.Errorf("monitor took %s (its timeout is 6s)", d)
			}
			time.Sleep(time.Until(began.Add(3 * time.Second)))
			out = a.want("monitor", 1, "OCF_RESKEY_api_error_tolerance=3", "OCF_RESKEY_CRM_meta_timeout=6000")
			if !strings.Contains(out, "ocf-exit-reason:the DigitalOcean API has been unavailable for") {
				t.Errorf("monitor after the tolerance: %s", out)
			}
			tc.clear()
			if out := a.want("monitor", 0); !strings.Contains(out, "the API answers again") {
				t.Errorf("monitor after the outage: %s", out)
			}
			if h := api.Holder("198.51.100.20"); h != 101 {
				t.Errorf("holder %d after the outage", h)
			}
		})
	}

	// A revoked token fails monitor at once, naming the cause.
	api.SetToken("dop_v1_new")
	if out := a.want("monitor", 1); !strings.Contains(out, "ocf-exit-reason:monitor: HTTP 401: Unable to authenticate you: the API token in "+token+" was refused") {
		t.Errorf("revoked token: %s", out)
	}
	api.SetToken("dop_v1_secret")

	// A wrong token fails with the API's message; no token is not configured.
	os.WriteFile(token, []byte("wrong\n"), 0o600)
	if out := b2.want("start", 1); !strings.Contains(out, "HTTP 401: Unable to authenticate you") {
		t.Errorf("wrong token: %s", out)
	}
	os.Remove(token)
	b2.want("validate-all", 6)

}

// writeAgent renders a shipped agent into dir, executable, as setup
// installs it on the nodes.
func writeAgent(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := templates.Render("cluster/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, string(b), 0o755)
}

func writeFile(t *testing.T, dir, name, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	return p
}
