package setup

import (
	"encoding/xml"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/fakedigitalocean"
	"gitlab.com/debship/debship/internal/testenv"
)

// fenceMetadata is the shape of fence-agents' metadata that pcs and
// pacemaker's fencer read.
type fenceMetadata struct {
	XMLName   xml.Name `xml:"resource-agent"`
	Name      string   `xml:"name,attr"`
	Shortdesc string   `xml:"shortdesc,attr"`
	Params    []struct {
		Name     string `xml:"name,attr"`
		Required string `xml:"required,attr"`
		Getopt   struct {
			Mixed string `xml:"mixed,attr"`
		} `xml:"getopt"`
		Content struct {
			Type    string `xml:"type,attr"`
			Default string `xml:"default,attr"`
		} `xml:"content"`
	} `xml:"parameters>parameter"`
	Actions []struct {
		Name string `xml:"name,attr"`
	} `xml:"actions>action"`
}

// TestFenceDigitalOcean runs the shipped fence agent as pacemaker's fencer
// (options on stdin) and as an operator (flags) would, against the fake API.
func TestFenceDigitalOcean(t *testing.T) {
	testenv.NeedCommand(t, "python3")
	dir := t.TempDir()
	agent := writeAgent(t, dir, "fence_digitalocean")
	token := writeFile(t, dir, "token", "dop_v1_secret\n", 0o600)
	loose := writeFile(t, dir, "loose-token", "dop_v1_secret\n", 0o644)

	var api *fakedigitalocean.Server
	reset := func() {
		if api != nil {
			api.Close()
		}
		api = fakedigitalocean.NewServer("dop_v1_secret")
		// More droplets than one page, so a lookup by name follows links.pages.next.
		for i := 0; i < 205; i++ {
			api.AddDroplet(5000+i, "other", "unrelated")
		}
		api.AddDroplet(101, "node1", "debship")
		api.AddDroplet(102, "node2", "debship")
	}
	reset()
	defer func() { api.Close() }()

	run := func(stdin string, args ...string) (int, string, string) {
		cmd := exec.Command("python3", append([]string{agent}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}
	stdin := func(kv ...string) string {
		base := []string{"api_url=" + api.URL, "token_file=" + token, "poll_interval=0.05", "api_timeout=5", "power_timeout=10", "nodename=node2"}
		return strings.Join(append(base, kv...), "\n") + "\n"
	}
	actions := func() []string {
		var s []string
		for _, a := range api.Actions() {
			s = append(s, a.Type+" "+strconv.Itoa(a.ResourceID))
		}
		return s
	}

	tests := []struct {
		name    string
		before  func()
		stdin   func() string
		args    func() []string
		code    int
		stdout  string // substring
		stderr  string // substring
		actions []string
		status  map[int]string // droplet statuses after
	}{
		{name: "off by id (pcmk_host_map)", stdin: func() string { return stdin("action=off", "port=102") },
			actions: []string{"power_off 102"}, status: map[int]string{101: "active", 102: "off"}},
		{name: "off by name across pages", stdin: func() string { return stdin("action=off", "plug=node2") },
			actions: []string{"power_off 102"}, status: map[int]string{102: "off"}},
		{name: "off of an off droplet succeeds without an action", before: func() { api.SetDropletStatus(102, "off") },
			stdin: func() string { return stdin("action=off", "plug=102") }, stderr: "already off", status: map[int]string{102: "off"}},
		{name: "on", before: func() { api.SetDropletStatus(102, "off") }, stdin: func() string { return stdin("action=on", "plug=102") },
			actions: []string{"power_on 102"}, status: map[int]string{102: "active"}},
		{name: "reboot is off then on", stdin: func() string { return stdin("action=reboot", "plug=102") },
			actions: []string{"power_off 102", "power_on 102"}, status: map[int]string{102: "active"}},
		{name: "status on", stdin: func() string { return stdin("action=status", "plug=101") }, stdout: "Status: ON"},
		{name: "status off exits 2", before: func() { api.SetDropletStatus(101, "off") },
			stdin: func() string { return stdin("action=status", "plug=101") }, code: 2, stdout: "Status: OFF"},
		{name: "list with flags, by tag", args: func() []string {
			return []string{"-o", "list", "--api-url", api.URL, "--token-file", token, "--tag", "debship"}
		}, stdout: "101,node1\n102,node2\n"},
		{name: "monitor", stdin: func() string { return stdin("action=monitor") }},
		{name: "monitor tolerates an API outage", before: func() { api.Fail(http.StatusBadGateway, time.Minute) },
			stdin: func() string { return stdin("action=monitor", "api_timeout=1") }, stderr: "the device stays usable"},
		{name: "monitor fails on a revoked token", before: func() { api.SetToken("dop_v1_new") },
			stdin: func() string { return stdin("action=monitor") }, code: 1, stderr: "refused the token"},
		{name: "validate-all", stdin: func() string { return stdin("action=validate-all") }},
		{name: "429 is retried", before: func() { api.FailNext(http.StatusTooManyRequests, 2) },
			stdin: func() string { return stdin("action=off", "plug=102") }, stderr: "HTTP 429", actions: []string{"power_off 102"}},
		{name: "5xx is retried", before: func() { api.FailNext(http.StatusServiceUnavailable, 2) },
			stdin: func() string { return stdin("action=off", "plug=102") }, stderr: "HTTP 503", actions: []string{"power_off 102"}},
		{name: "401 names the token", before: func() { api.SetToken("dop_v1_new") },
			stdin: func() string { return stdin("action=off", "plug=102") }, code: 1, stderr: "refused the token in " + token},
		{name: "a readable token file is refused", stdin: func() string { return stdin("action=off", "plug=102", "token_file="+loose) },
			code: 1, stderr: "can be read by other users", status: map[int]string{102: "active"}},
		{name: "an unknown droplet fails", stdin: func() string { return stdin("action=off", "plug=nodeX") }, code: 1, stderr: "0 droplets are named 'nodeX'"},
		{name: "an API that stays down gives up", before: func() { api.Fail(http.StatusInternalServerError, time.Minute) },
			stdin: func() string { return stdin("action=off", "plug=102", "api_timeout=1") }, code: 1, stderr: "giving up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reset()
			if tc.before != nil {
				tc.before()
			}
			var args []string
			in := ""
			if tc.args != nil {
				args = tc.args()
			} else {
				in = tc.stdin()
			}
			code, out, errs := run(in, args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errs, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout (want %q in it): %s\nstderr (want %q in it): %s", code, tc.code, tc.stdout, out, tc.stderr, errs)
			}
			if got := strings.Join(actions(), ","); got != strings.Join(tc.actions, ",") {
				t.Errorf("actions %q, want %q", got, tc.actions)
			}
			for id, st := range tc.status {
				if got := api.DropletStatus(id); got != st {
					t.Errorf("droplet %d is %s, want %s", id, got, st)
				}
			}
			if strings.Contains(out+errs, "dop_v1_secret") {
				t.Errorf("the token is in the output: %s %s", out, errs)
			}
		})
	}

	t.Run("metadata", func(t *testing.T) {
		for _, args := range [][]string{{"-o", "metadata"}, nil} {
			code, out, _ := run("action=metadata\n", args...)
			var m fenceMetadata
			if err := xml.Unmarshal([]byte(out), &m); code != 0 || err != nil {
				t.Fatalf("exit %d, %v\n%s", code, err, out)
			}
			params, acts := map[string]string{}, map[string]bool{}
			for _, p := range m.Params {
				params[p.Name] = p.Required
				if p.Getopt.Mixed == "" || p.Content.Type == "" {
					t.Errorf("parameter %s lacks getopt or content: %+v", p.Name, p)
				}
			}
			for _, a := range m.Actions {
				acts[a.Name] = true
			}
			if m.Name != "fence_digitalocean" || m.Shortdesc == "" || params["action"] != "1" || params["plug"] != "1" ||
				params["token_file"] != "0" || params["api_url"] != "0" || params["port"] == "" {
				t.Errorf("metadata: %+v", m)
			}
			for _, a := range []string{"on", "off", "reboot", "status", "list", "monitor", "metadata", "validate-all"} {
				if !acts[a] {
					t.Errorf("metadata lacks action %s", a)
				}
			}
		}
	})
}
