// Command loadgen sends requests to a URL at a fixed rate (by default one
// connection each, a timeout, no retries; -kind for keep-alive clients) until it is interrupted or its duration ends,
// and prints the report of internal/loadgen as one JSON line on
// stdout. bench/deploy.sh runs it against the floating IP during a deploy.
//
//	go run ./bench/loadgen -url http://10.231.0.100:8080/ -duration 60s
//
// SIGINT or SIGTERM stops the load early; the report covers what was sent.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"gitlab.com/debship/debship/internal/loadgen"
)

func main() {
	url := flag.String("url", "http://10.231.0.100:8080/", "URL to request")
	kind := flag.String("kind", string(loadgen.KindNew), "client: new (a connection per request), pool (4 keep-alive connections, POST, never re-sent), retry (Go's default client, GET, 4 connections) or urllib3 (Python's urllib3 defaults, GET, 4 pooled connections; needs /usr/bin/python3 with python3-urllib3)")
	rate := flag.Float64("rate", 50, "requests per second")
	timeout := flag.Duration("timeout", 2*time.Second, "timeout per request (urllib3: per attempt)")
	duration := flag.Duration("duration", 5*time.Minute, "stop after this long")
	flag.Parse()
	if !slices.Contains(loadgen.Kinds, loadgen.Kind(*kind)) {
		fmt.Fprintf(os.Stderr, "loadgen: -kind %q: want one of %v\n", *kind, loadgen.Kinds)
		os.Exit(2)
	}
	if err := loadgen.Ready(loadgen.Kind(*kind)); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}

	l := loadgen.Start(context.Background(), loadgen.Options{
		URL: *url, Kind: loadgen.Kind(*kind), Rate: *rate, Timeout: *timeout, Duration: *duration,
	})
	done := make(chan loadgen.Report, 1)
	go func() { done <- l.Wait() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	var r loadgen.Report
	select {
	case r = <-done:
	case <-sig:
		r = l.Stop()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	out := map[string]any{
		"requests":       r.Requests,
		"failed":         r.Failed,
		"p50_ms":         ms(r.P50),
		"p99_ms":         ms(r.P99),
		"max_ms":         ms(r.Max),
		"longest_gap_ms": ms(r.LongestGap),
		"duration_s":     r.Duration.Seconds(),
		"errors":         r.Errors,
		"versions":       r.Versions,
		"hosts":          r.Hosts,
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "loadgen:", r)
}
