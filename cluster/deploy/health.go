package deploy

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/transport"
	"gitlab.com/debship/debship/debbuild/debversion"
)

// HealthCheck is how a node proves it serves the new version: an HTTP GET
// of the inventory's health path on the node's own address (from the node
// itself, so that a firewall between the deploying machine and the app
// port does not matter), until it answers Status or Retries run out.
type HealthCheck struct {
	Status   int           // expected HTTP status; default 200
	Timeout  time.Duration // per request; default 5 s
	Retries  int           // attempts; default 30
	Interval time.Duration // between attempts; default 1 s
}

func (h HealthCheck) withDefaults() HealthCheck {
	if h.Status == 0 {
		h.Status = 200
	}
	if h.Timeout <= 0 {
		h.Timeout = 5 * time.Second
	}
	if h.Retries <= 0 {
		h.Retries = 30
	}
	if h.Interval <= 0 {
		h.Interval = time.Second
	}
	return h
}

// healthURL is the URL a node checks itself on.
func healthURL(addr string, port int, path string) string {
	host := addr
	if strings.Contains(addr, ":") {
		host = "[" + addr + "]"
	}
	return fmt.Sprintf("http://%s:%d%s", host, port, path)
}

// versionToken finds version-like words in a health body ("ok 1.4.0").
var versionToken = regexp.MustCompile(`\b[0-9]+(?:\.[0-9]+)+(?:[-.+~]?[0-9A-Za-z]+)*`)

// upstreamOf strips the epoch and the Debian revision: "1:1.4-1" -> "1.4".
func upstreamOf(debVersion string) string {
	v := debVersion
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		v = v[:i]
	}
	return v
}

// namesVersion reports whether body names the Debian version deb: the
// body's version-like words are compared as PEP 440 versions converted the
// way debship builds them (the app says "1.4.0", the package is "1.4-1").
func namesVersion(body, deb string) bool {
	if deb == "" {
		return false
	}
	want := upstreamOf(deb)
	for _, tok := range versionToken.FindAllString(body, -1) {
		if tok == want || tok == deb {
			return true
		}
		if d, err := debversion.DebianVersion(tok); err == nil && d == want {
			return true
		}
	}
	return false
}

// healthResult is one health check's outcome.
type healthResult struct {
	OK       bool
	Status   int
	Body     string
	Attempts int
	Version  string // "confirmed", "not named", or the problem
	Err      string
}

func (r healthResult) String() string {
	switch {
	case r.OK:
		return fmt.Sprintf("HTTP %d after %d attempt(s), version %s", r.Status, r.Attempts, r.Version)
	case r.Err != "":
		return fmt.Sprintf("no answer after %d attempts: %s", r.Attempts, r.Err)
	case r.Version != "" && r.Status > 0:
		return fmt.Sprintf("HTTP %d after %d attempts (%s)", r.Status, r.Attempts, r.Version)
	default:
		return fmt.Sprintf("HTTP %d after %d attempts (body %q)", r.Status, r.Attempts, clip(r.Body, 120))
	}
}

func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// checkHealth polls url from the node t until it answers h.Status with a
// body that names want (when the body names a version at all) and not the
// version before (old). It gives up after h.Retries attempts.
func checkHealth(ctx context.Context, t transport.Transport, url string, h HealthCheck, want, old string) healthResult {
	h = h.withDefaults()
	secs := strconv.FormatFloat(h.Timeout.Seconds(), 'f', 1, 64)
	// The status code on a line of its own after the body; curl's own error
	// on stderr. No retries inside curl: the loop here counts attempts.
	cmd := "curl -sS -o - -w '\\n%{http_code}' --max-time " + secs + " " + transport.Quote(url)
	var r healthResult
	for r.Attempts < h.Retries {
		r.Attempts++
		out, stderr, err := t.Run(ctx, cmd)
		r.Err = ""
		if err != nil && transport.ExitCode(err) < 0 {
			// the session itself failed: the node is gone or the context ended
			r.Err = err.Error()
			return r
		}
		s := string(out)
		i := strings.LastIndexByte(s, '\n')
		code, _ := strconv.Atoi(strings.TrimSpace(s[i+1:]))
		if i >= 0 {
			r.Body = s[:i]
		}
		r.Status = code
		switch {
		case code == 0:
			r.Err = strings.TrimSpace(string(stderr))
			if r.Err == "" && err != nil {
				r.Err = err.Error()
			}
		case code != h.Status:
			r.Version = fmt.Sprintf("expected %d", h.Status)
		case namesVersion(r.Body, want):
			r.OK, r.Version = true, "confirmed ("+clip(r.Body, 60)+")"
			return r
		case old != "" && old != want && namesVersion(r.Body, old):
			// The old version still answers: the restart did not happen
			// (yet). Keep polling.
			r.Version = fmt.Sprintf("the body still names the old version %s (%q)", old, clip(r.Body, 60))
		default:
			r.OK, r.Version = true, "not named in the body"
			return r
		}
		if r.Attempts >= h.Retries {
			break
		}
		select {
		case <-ctx.Done():
			r.Err = ctx.Err().Error()
			return r
		case <-time.After(h.Interval):
		}
	}
	return r
}
