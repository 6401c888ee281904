// Package loadgen sends HTTP requests at a fixed rate and reports what a
// user would have seen: failed requests, latency percentiles and the
// longest time without a successful answer. The deploy tests (and
// bench scripts) run it against the floating IP during a deploy.
//
// The rate is open-loop: a request starts every 1/Rate seconds whether or
// not the earlier ones have answered, so that an outage shows as failures
// and latency instead of silently slowing the client down.
//
// Kind picks the client: KindNew opens a connection per request and never
// retries (every SYN that goes unanswered is seen); KindPool, KindRetry and
// KindUrllib3 keep up to 4 connections open, as browsers, API clients and
// proxies do, and differ in what happens when the server closed a
// connection the client reuses (see Kind). KindUrllib3 is a Python
// program (templates/files/loadgen/urllib3_client.py) run by the host's
// /usr/bin/python3 with Debian's python3-urllib3.
package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind is how the client holds its connections.
type Kind string

const (
	// KindNew opens a new connection for every request (keep-alive off),
	// no retries.
	KindNew Kind = "new"
	// KindPool keeps up to PoolSize connections open and never sends a
	// request twice: it POSTs, and Go's Transport (like urllib3 and
	// browsers) does not replay a non-idempotent request it has written.
	// A request written on a connection the server has just closed fails.
	KindPool Kind = "pool"
	// KindRetry is Go's net/http default client with up to PoolSize
	// connections: a GET (idempotent) that fails on a reused connection
	// before any answer arrived is sent once more on a new connection, as
	// urllib3 and browsers do.
	KindRetry Kind = "retry"
	// KindUrllib3 is Python's urllib3 with its defaults but for the pool
	// size (PoolSize, block=False): a GET sent again up to 3 times after a
	// connection error, a connection closed or reset before the answer, or
	// a read timeout (Timeout applies to each attempt).
	KindUrllib3 Kind = "urllib3"
)

// Python runs KindUrllib3: Debian's interpreter, with Debian's urllib3,
// not whatever python3 comes first on PATH.
const Python = "/usr/bin/python3"

// PoolSize is how many connections the keep-alive kinds hold at most.
const PoolSize = 4

// Kinds are all kinds, in the order reports list them.
var Kinds = []Kind{KindNew, KindPool, KindRetry, KindUrllib3}

// Ready reports whether the client of kind k can run on this host.
func Ready(k Kind) error {
	if k != KindUrllib3 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, Python, "-I", "-c", "import urllib3").CombinedOutput()
	if err != nil {
		return fmt.Errorf("the urllib3 client needs %s with urllib3 (apt-get install python3-urllib3): %w: %s", Python, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Options bound a load: it stops at Duration or MaxRequests, whichever
// comes first, or when stopped.
type Options struct {
	URL         string
	Kind        Kind          // default KindNew
	Rate        float64       // requests per second; default 50
	Timeout     time.Duration // per request (KindUrllib3: per attempt); default 2 s
	Duration    time.Duration // default 5 minutes
	MaxRequests int           // default Rate * Duration
	MaxInFlight int           // default 200
}

// Sample is one request.
type Sample struct {
	Start   time.Time
	Latency time.Duration
	Status  int
	Err     string
	// Reused: the request went out on a connection an earlier one used
	// (for a failure: the server or the network may have closed it).
	Reused bool
	// Host and Version come from a JSON body with "host" and "version"
	// (the example app's "/"), to see which node answered.
	Host, Version string
}

// OK reports whether the request succeeded (a 2xx answer in time).
func (s Sample) OK() bool { return s.Err == "" && s.Status >= 200 && s.Status < 300 }

// Load is a running load.
type Load struct {
	o      Options
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	s      []Sample
	t0     time.Time
}

// Start begins sending requests.
func Start(ctx context.Context, o Options) *Load {
	if o.Rate <= 0 {
		o.Rate = 50
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Minute
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = int(o.Rate*o.Duration.Seconds()) + 1
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 200
	}
	if o.Kind == "" {
		o.Kind = KindNew
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	l := &Load{o: o, cancel: cancel, done: make(chan struct{}), t0: time.Now()}
	go l.run(ctx)
	return l
}

func (l *Load) run(ctx context.Context) {
	defer close(l.done)
	if l.o.Kind == KindUrllib3 {
		l.runPython(ctx)
		return
	}
	tr := &http.Transport{DisableKeepAlives: true}
	if l.o.Kind != KindNew {
		// Go's defaults (keep-alive, 90 s idle timeout), without a proxy
		// from the environment, at most PoolSize connections.
		tr = http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.MaxConnsPerHost = PoolSize
		tr.MaxIdleConnsPerHost = PoolSize
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: l.o.Timeout, Transport: tr}
	interval := time.Duration(float64(time.Second) / l.o.Rate)
	sem := make(chan struct{}, l.o.MaxInFlight)
	var wg sync.WaitGroup
	next := time.Now()
	for i := 0; i < l.o.MaxRequests; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-time.After(time.Until(next)):
		}
		next = next.Add(interval)
		select {
		case sem <- struct{}{}:
		default:
			// Too many requests hang: count this one as failed, do not
			// queue it (the load must not pile up).
			l.add(Sample{Start: time.Now(), Err: "too many requests in flight"})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.add(l.one(client))
		}()
	}
	wg.Wait()
}

func (l *Load) one(c *http.Client) Sample {
	s := Sample{Start: time.Now()}
	method := http.MethodGet
	if l.o.Kind == KindPool {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, l.o.URL, nil)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	// A retried request gets a second connection: Reused is the first one's.
	var once sync.Once
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { once.Do(func() { s.Reused = i.Reused }) },
	}))
	resp, err := c.Do(req)
	if err != nil {
		s.Latency = time.Since(s.Start)
		s.Err = err.Error()
		return s
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	s.Latency = time.Since(s.Start)
	s.Status = resp.StatusCode
	if err != nil {
		s.Err = err.Error()
		return s
	}
	var body struct{ Host, Version string }
	if json.Unmarshal(b, &body) == nil {
		s.Host, s.Version = body.Host, body.Version
	}
	return s
}

func (l *Load) add(s Sample) {
	l.mu.Lock()
	l.s = append(l.s, s)
	l.mu.Unlock()
}

// Stop ends the load, waits for the requests in flight and reports.
func (l *Load) Stop() Report {
	l.cancel()
	<-l.done
	return l.Report()
}

// Wait waits until the load ends by itself (Duration, MaxRequests).
func (l *Load) Wait() Report {
	<-l.done
	return l.Report()
}

// Samples returns a copy of the samples so far, in start order.
func (l *Load) Samples() []Sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]Sample(nil), l.s...)
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Report sums up the samples so far.
func (l *Load) Report() Report { return Summarize(l.Samples()) }

// Report is what a user would have seen.
type Report struct {
	Requests int
	Failed   int
	P50, P99 time.Duration
	Max      time.Duration
	// LongestGap is the longest time between two successful answers
	// (by the time they arrived): the outage a user saw.
	LongestGap time.Duration
	GapAt      time.Time // when that gap began
	// Hosts are the nodes that answered, in order, each once per run of
	// answers from it: ["node1", "node2"] is one switch.
	Hosts        []string
	Versions     map[string]int
	Errors       map[string]int // error kind -> count
	Duration     time.Duration
	FirstFailure time.Time
}

// HostSwitches is how often the answering node changed.
func (r Report) HostSwitches() int {
	if len(r.Hosts) == 0 {
		return 0
	}
	return len(r.Hosts) - 1
}

// Summarize computes a report from samples in start order.
func Summarize(samples []Sample) Report {
	r := Report{Requests: len(samples), Versions: map[string]int{}, Errors: map[string]int{}}
	if len(samples) == 0 {
		return r
	}
	var lat []time.Duration
	var ends []time.Time
	for _, s := range samples {
		if !s.OK() {
			r.Failed++
			if r.FirstFailure.IsZero() || s.Start.Before(r.FirstFailure) {
				r.FirstFailure = s.Start
			}
			r.Errors[errorKind(s)]++
			continue
		}
		lat = append(lat, s.Latency)
		ends = append(ends, s.Start.Add(s.Latency))
		if s.Version != "" {
			r.Versions[s.Version]++
		}
		if s.Host != "" && (len(r.Hosts) == 0 || r.Hosts[len(r.Hosts)-1] != s.Host) {
			r.Hosts = append(r.Hosts, s.Host)
		}
	}
	last := samples[len(samples)-1]
	r.Duration = last.Start.Add(last.Latency).Sub(samples[0].Start)
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r.P50 = lat[len(lat)/2]
		r.P99 = lat[(len(lat)*99)/100]
		if (len(lat)*99)/100 >= len(lat) {
			r.P99 = lat[len(lat)-1]
		}
		r.Max = lat[len(lat)-1]
		sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
		for i := 1; i < len(ends); i++ {
			if g := ends[i].Sub(ends[i-1]); g > r.LongestGap {
				r.LongestGap, r.GapAt = g, ends[i-1]
			}
		}
	}
	return r
}

func errorKind(s Sample) string {
	k := errorCause(s)
	if s.Reused {
		k += " on a reused connection"
	}
	return k
}

// causes are the error kinds the urllib3 client reports, as "kind: detail".
var causes = []string{"timeout", "connection refused", "connection reset", "no route to host", "closed by the server (EOF)"}

func errorCause(s Sample) string {
	if s.Err != "" {
		for _, c := range causes {
			if strings.HasPrefix(s.Err, c+": ") {
				return c
			}
		}
	}
	switch {
	case s.Err == "":
		return fmt.Sprintf("HTTP %d", s.Status)
	case strings.Contains(s.Err, "Client.Timeout") || strings.Contains(s.Err, "deadline exceeded"):
		return "timeout"
	case strings.Contains(s.Err, "connection refused"):
		return "connection refused"
	case strings.Contains(s.Err, "connection reset"):
		return "connection reset"
	case strings.Contains(s.Err, "no route to host"):
		return "no route to host"
	case strings.HasSuffix(s.Err, "EOF"):
		return "closed by the server (EOF)"
	}
	return s.Err
}

func (r Report) String() string {
	var errs []string
	for k, v := range r.Errors {
		errs = append(errs, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(errs)
	e := ""
	if len(errs) > 0 {
		e = " (" + strings.Join(errs, ", ") + ")"
	}
	return fmt.Sprintf("%d requests in %.1fs, %d failed%s; latency p50 %s p99 %s max %s; longest gap %s; answered by %s",
		r.Requests, r.Duration.Seconds(), r.Failed, e, ms(r.P50), ms(r.P99), ms(r.Max), ms(r.LongestGap), strings.Join(r.Hosts, " -> "))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }
