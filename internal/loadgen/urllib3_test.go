package loadgen

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/testnet"
)

// answering answers every request with the example app's JSON; idle > 0
// closes a keep-alive connection idle that long (a server's keep-alive
// timeout), so that the client's next request finds it closed.
func answering(t *testing.T, idle time.Duration) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"host":"n1","version":"1.0"}`)
	}))
	srv.Config.IdleTimeout = idle
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// silent accepts connections and reads the requests but never answers: a
// server that stopped answering.
func silent(t *testing.T) string {
	t.Helper()
	addr := testnet.Serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	return "http://" + addr.String() + "/"
}

// refusing is a port nothing listens on.
func refusing(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	ln.Close()
	return url
}

// TestUrllib3 is the urllib3 client against servers that answer, that
// close idle connections, that close a reused connection instead of
// answering on it, that stopped answering, and a port nobody listens on.
func TestUrllib3(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, c := range []struct {
		name     string
		url      func(t *testing.T) string
		requests int
		// wantFailed requests fail as wantErr, the others succeed.
		wantFailed int
		wantErr    string
		wantReused bool
	}{
		{"answers", func(t *testing.T) string { return answering(t, 0) }, 40, 0, "", true},
		// 10 ms idle at 100 requests/s: connections close between
		// requests, some as a request is sent on them.
		{"keep-alive timeout", func(t *testing.T) string { return answering(t, 10*time.Millisecond) }, 40, 0, "", false},
		{"closes a reused connection", stalingServer, 40, 0, "", true},
		{"stopped answering", silent, 8, 8, "timeout", false},
		{"connection refused", refusing, 8, 8, "connection refused", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			needReady(t, KindUrllib3)
			start := time.Now()
			l := Start(context.Background(), Options{URL: c.url(t), Kind: KindUrllib3, Rate: 100, MaxRequests: c.requests, Timeout: timeout, Duration: 20 * time.Second})
			r := l.Wait()
			reused := 0
			for _, s := range l.Samples() {
				if s.Reused {
					reused++
				}
			}
			t.Logf("%s: %s; %d on a reused connection; %s in all", c.name, r, reused, time.Since(start).Round(time.Millisecond))
			if r.Requests != c.requests {
				t.Errorf("%d requests, want %d", r.Requests, c.requests)
			}
			if r.Failed != c.wantFailed || r.Errors[c.wantErr] != c.wantFailed {
				t.Errorf("%d failed (%v), want %d, all %q", r.Failed, r.Errors, c.wantFailed, c.wantErr)
			}
			if c.wantReused && reused == 0 {
				t.Errorf("no request reused a connection")
			}
			if ok := r.Requests - r.Failed; ok > 0 && (len(r.Hosts) != 1 || r.Versions["1.0"] != ok) {
				t.Errorf("answers: hosts %v versions %v, want n1 and version 1.0 for %d", r.Hosts, r.Versions, ok)
			}
			if c.wantErr == "timeout" {
				// urllib3 retries a GET after a read timeout: the user
				// waits for every attempt.
				for _, s := range l.Samples() {
					if s.Latency < urllib3Attempts*timeout {
						t.Errorf("a timeout after %s, want %d attempts of %s", s.Latency, urllib3Attempts, timeout)
					}
				}
			}
		})
	}
}

// TestUrllib3Stop: Stop ends a load whose requests hang, after their
// attempts and not later, and keeps what was sent.
func TestUrllib3Stop(t *testing.T) {
	needReady(t, KindUrllib3)
	const timeout = 200 * time.Millisecond
	l := Start(context.Background(), Options{URL: silent(t), Kind: KindUrllib3, Rate: 20, Timeout: timeout, Duration: time.Minute})
	for deadline := time.Now().Add(10 * time.Second); len(l.Samples()) < 3 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	stopped := time.Now()
	r := l.Stop()
	took := time.Since(stopped)
	t.Logf("%s; Stop took %s", r, took.Round(time.Millisecond))
	if took > urllib3Attempts*timeout+2*time.Second {
		t.Errorf("Stop took %s, want at most the requests' %d attempts of %s", took, urllib3Attempts, timeout)
	}
	if r.Requests < 3 || r.Failed != r.Requests || r.Errors["timeout"] != r.Requests {
		t.Errorf("%d requests, %d failed (%v): want at least 3, all timeouts", r.Requests, r.Failed, r.Errors)
	}
}
