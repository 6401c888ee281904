// Command webhookload drives bench/webhook.sh: it posts GitLab webhook
// deliveries to a receiver at a fixed open-loop rate (each delivery leaves
// on schedule, whether or not earlier ones were answered) and prints the
// count, the status codes and the p50/p99/max response latency as a
// markdown table. The mix, in turn: a valid token with a Pipeline Hook of
// a branch (ignored, 200), a wrong token (401), a valid token with an
// event the receiver does not know (ignored, 200). With -conns it measures
// throughput instead (closed.go). Not a test.
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
	"gitlab.com/debship/debship/ci/webhook/webhooktest"
)

func main() {
	url := flag.String("url", "", "receiver URL, e.g. http://127.0.0.1:8470/hooks/gitlab")
	token := flag.String("token", "", "the receiver's secret token")
	rate := flag.Int("rate", 200, "deliveries per second")
	count := flag.Int("n", 2000, "deliveries in all")
	conns := flag.Int("conns", 0, "closed loop instead: this many connections posting an ignored delivery back to back")
	duration := flag.Duration("duration", 10*time.Second, "with -conns, how long")
	name := flag.String("name", "debship webhook serve", "with -conns, the receiver's name in the table")
	flag.Parse()
	if *url == "" || *token == "" || *rate <= 0 || *count <= 0 {
		fmt.Fprintln(os.Stderr, "usage: webhookload -url URL -token TOKEN [-rate 200] [-n 2000]")
		os.Exit(2)
	}

	client := &http.Client{
		Timeout:   10 * time.Second, // GitLab's own limit
		Transport: &http.Transport{MaxIdleConnsPerHost: 1000, MaxConnsPerHost: 0},
	}
	valid := gitlabtest.Hook{URL: *url, Token: *token, Client: client}
	wrong := gitlabtest.Hook{URL: *url, Token: strings.Repeat("x", len(*token)), Client: client}
	branch := webhooktest.Pipeline(webhooktest.ProjectID, webhooktest.ProjectPath, "main")
	note, err := webhooktest.Event("pipeline", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *conns > 0 {
		if err := closedLoop(*name, &valid, branch, *conns, *duration); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	kinds := []struct {
		hook  *gitlabtest.Hook
		event string
		body  []byte
	}{
		{&valid, "Pipeline Hook", branch},
		{&wrong, "Pipeline Hook", branch},
		{&valid, "Note Hook", note},
	}

	lat := make([]time.Duration, *count)
	codes := make([]int, *count)
	var wg sync.WaitGroup
	ctx := context.Background()
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	for i := 0; i < *count; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		k := kinds[i%len(kinds)]
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t := time.Now()
			code, _, err := k.hook.Send(ctx, gitlabtest.Delivery{Event: k.event, Body: k.body})
			lat[i] = time.Since(t)
			if err != nil {
				code = 0 // transport error
			}
			codes[i] = code
		}(i)
	}
	sent := time.Since(start)
	wg.Wait()

	hist := map[int]int{}
	for _, c := range codes {
		hist[c]++
	}
	var hs []string
	for _, c := range slices.Sorted(maps.Keys(hist)) {
		name := fmt.Sprint(c)
		if c == 0 {
			name = "error"
		}
		hs = append(hs, fmt.Sprintf("%s × %d", name, hist[c]))
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

	fmt.Println("| deliveries | rate | sent in | status codes | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|---|---|")
	fmt.Printf("| %d | %d/s | %.1f s | %s | %s | %s | %s |\n", *count, *rate, sent.Seconds(),
		strings.Join(hs, ", "), ms(pct(0.50)), ms(pct(0.99)), ms(lat[len(lat)-1]))
	if hist[0] > 0 {
		os.Exit(1)
	}
}
