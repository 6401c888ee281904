package fakedigitalocean

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func call(t *testing.T, s *Server, token, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, resp.Header, v
}

// TestFakeAPI checks the fake against what DigitalOcean documents: the
// paginated droplet list, asynchronous droplet actions, errors with
// rate-limit headers, and the injected faults.
func TestFakeAPI(t *testing.T) {
	s := NewServer("tok", "198.51.100.20")
	defer s.Close()
	for i := 1; i <= 5; i++ {
		tag := "web"
		if i == 5 {
			tag = "db"
		}
		s.AddDroplet(100+i, "node"+string(rune('0'+i)), tag)
	}
	var offHook []int
	s.SetHooks(Hooks{PowerOff: func(id int) error { offHook = append(offHook, id); return nil }})

	tests := []struct {
		name, method, path, body string
		token                    string
		status                   int
		check                    func(v map[string]any) bool
	}{
		{"page 2 of 3", "GET", "/v2/droplets?page=2&per_page=2", "", "tok", 200, func(v map[string]any) bool {
			l := v["droplets"].([]any)
			pages := v["links"].(map[string]any)["pages"].(map[string]any)
			return len(l) == 2 && l[0].(map[string]any)["id"] == 103.0 && v["meta"].(map[string]any)["total"] == 5.0 &&
				strings.Contains(pages["next"].(string), "page=3") && strings.Contains(pages["prev"].(string), "page=1")
		}},
		{"last page has no next", "GET", "/v2/droplets?page=3&per_page=2", "", "tok", 200, func(v map[string]any) bool {
			_, next := v["links"].(map[string]any)["pages"].(map[string]any)["next"]
			return len(v["droplets"].([]any)) == 1 && !next
		}},
		{"by tag", "GET", "/v2/droplets?tag_name=db", "", "tok", 200, func(v map[string]any) bool {
			return v["meta"].(map[string]any)["total"] == 1.0
		}},
		{"by name", "GET", "/v2/droplets?name=NODE2", "", "tok", 200, func(v map[string]any) bool {
			return v["droplets"].([]any)[0].(map[string]any)["id"] == 102.0
		}},
		{"one droplet", "GET", "/v2/droplets/101", "", "tok", 200, func(v map[string]any) bool {
			return v["droplet"].(map[string]any)["status"] == "active"
		}},
		{"unknown droplet", "GET", "/v2/droplets/999", "", "tok", 404, func(v map[string]any) bool { return v["id"] == "not_found" }},
		{"bad token", "GET", "/v2/droplets", "", "nope", 401, func(v map[string]any) bool { return v["id"] == "Unauthorized" }},
		{"unknown action type", "POST", "/v2/droplets/101/actions", `{"type":"explode"}`, "tok", 422, func(v map[string]any) bool {
			return v["id"] == "unprocessable_entity"
		}},
		{"power_off", "POST", "/v2/droplets/102/actions", `{"type":"power_off"}`, "tok", 201, func(v map[string]any) bool {
			a := v["action"].(map[string]any)
			return a["status"] == "in-progress" && a["type"] == "power_off" && a["resource_id"] == 102.0
		}},
		{"pending event", "POST", "/v2/droplets/102/actions", `{"type":"power_on"}`, "tok", 422, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, h, v := call(t, s, tc.token, tc.method, tc.path, tc.body)
			if st != tc.status || h.Get("ratelimit-limit") != "5000" || h.Get("ratelimit-remaining") == "" || h.Get("ratelimit-reset") == "" {
				t.Fatalf("status %d (want %d), headers %v, body %v", st, tc.status, h, v)
			}
			if tc.check != nil && !tc.check(v) {
				t.Errorf("body %v", v)
			}
		})
	}

	// The power_off completes after polls, through both action URLs.
	var status string
	for i := 0; i < 50 && status != "completed"; i++ {
		_, _, v := call(t, s, "tok", "GET", "/v2/actions/1001", "")
		status = v["action"].(map[string]any)["status"].(string)
		time.Sleep(10 * time.Millisecond)
	}
	if _, _, v := call(t, s, "tok", "GET", "/v2/droplets/102/actions/1001", ""); status != "completed" || v["action"].(map[string]any)["status"] != "completed" {
		t.Fatalf("power_off did not complete: %s %v", status, v)
	}
	if s.DropletStatus(102) != "off" || len(offHook) != 1 || offHook[0] != 102 || len(s.Actions()) != 1 {
		t.Errorf("after power_off: status %s, hook %v, actions %v", s.DropletStatus(102), offHook, s.Actions())
	}

	// Faults: 429 for a while (an hour: however late the request comes,
	// it is inside the fault), a hang, a revoked token.
	s.Fail(http.StatusTooManyRequests, time.Hour)
	st, h, v := call(t, s, "tok", "GET", "/v2/droplets/101", "")
	reset, _ := strconv.ParseInt(h.Get("ratelimit-reset"), 10, 64)
	if st != 429 || h.Get("ratelimit-remaining") != "0" || v["id"] != "too_many_requests" || reset < time.Now().Add(59*time.Minute).Unix() {
		t.Errorf("during an hour's 429 fault (ratelimit-reset must be its end): %d %v %v", st, h, v)
	}
	s.FailNext(http.StatusTooManyRequests, 1)
	s.Fail(http.StatusTooManyRequests, 0) // a fault whose time is over
	if st, _, _ := call(t, s, "tok", "GET", "/v2/droplets/101", ""); st != 429 {
		t.Errorf("FailNext 1: %d", st)
	}
	if st, _, _ := call(t, s, "tok", "GET", "/v2/droplets/101", ""); st != 200 {
		t.Errorf("after the fault and the failed request: %d", st)
	}
	s.Fail(0, 3*time.Second)
	if st, _, _ := call(t, s, "tok", "GET", "/v2/droplets/101", ""); st != 0 {
		t.Errorf("hung API answered %d", st)
	}
	s.Fail(0, 0)
	s.SetToken("new")
	if st, _, _ := call(t, s, "tok", "GET", "/v2/droplets/101", ""); st != 401 {
		t.Errorf("revoked token: %d", st)
	}
}

// TestMetadataByAddress: the fake answers /metadata/v1/id with the id of
// the droplet that asks.
func TestMetadataByAddress(t *testing.T) {
	s := NewServer("tok")
	defer s.Close()
	s.SetDropletAddress(7, "127.0.0.1")
	resp, err := http.Get(s.URL + "/metadata/v1/id")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 10)
	n, _ := resp.Body.Read(b)
	if resp.StatusCode != 200 || string(b[:n]) != "7" {
		t.Fatalf("%d %q", resp.StatusCode, b[:n])
	}
}
