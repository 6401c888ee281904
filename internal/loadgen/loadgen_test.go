package loadgen

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"gitlab.com/debship/debship/internal/testenv"
	"gitlab.com/debship/debship/internal/testnet"
)

func needReady(t *testing.T, k Kind) {
	t.Helper()
	if err := Ready(k); err != nil {
		testenv.Missing(t, "%v", err)
	}
}

// stalingServer answers the first request on each connection and closes
// the connection without an answer when the second one arrives: the race
// a server's keep-alive timeout (or a stopping server) loses against a
// client that reuses the connection.
func stalingServer(t *testing.T) string {
	t.Helper()
	addr := testnet.Serve(t, func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		for i := 0; ; i++ {
			req, err := http.ReadRequest(r)
			if err != nil || i == 1 {
				return
			}
			req.Body.Close()
			body := `{"host":"n1","version":"1.0"}`
			resp := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n" + body
			if _, err := c.Write([]byte(resp)); err != nil {
				return
			}
		}
	})
	return "http://" + addr.String() + "/"
}

func TestKinds(t *testing.T) {
	url := stalingServer(t)
	for _, c := range []struct {
		kind       Kind
		wantFailed bool // some requests fail
		wantReused bool // some requests reuse a connection
	}{
		{KindNew, false, false},
		{KindPool, true, true},
		{KindRetry, false, true},
		{KindUrllib3, false, true},
	} {
		t.Run(string(c.kind), func(t *testing.T) {
			needReady(t, c.kind)
			l := Start(context.Background(), Options{URL: url, Kind: c.kind, Rate: 100, MaxRequests: 40, Timeout: time.Second, Duration: 10 * time.Second})
			r := l.Wait()
			reused := 0
			for _, s := range l.Samples() {
				if s.Reused {
					reused++
				}
			}
			t.Logf("%s: %s; %d on a reused connection", c.kind, r, reused)
			if r.Requests != 40 {
				t.Errorf("%d requests, want 40", r.Requests)
			}
			if (r.Failed > 0) != c.wantFailed {
				t.Errorf("%d failed (%v), want failures: %v", r.Failed, r.Errors, c.wantFailed)
			}
			if c.wantFailed && r.Errors["closed by the server (EOF) on a reused connection"] != r.Failed {
				t.Errorf("errors %v, want all %d as closed by the server on a reused connection", r.Errors, r.Failed)
			}
			if (reused > 0) != c.wantReused {
				t.Errorf("%d requests reused a connection, want reuse: %v", reused, c.wantReused)
			}
			if r.Failed < r.Requests && (len(r.Hosts) != 1 || r.Versions["1.0"] != r.Requests-r.Failed) {
				t.Errorf("answers: hosts %v versions %v", r.Hosts, r.Versions)
			}
		})
	}
}
