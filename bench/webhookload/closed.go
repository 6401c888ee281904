package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"gitlab.com/debship/debship/ci/gitlab/gitlabtest"
)

// closedLoop is the throughput mode (-conns): each of conns workers posts
// the same valid but ignored delivery (a branch pipeline) again as soon as
// the last one was answered, for d, as wrk does; it prints one table row
// named name: answers per second and the latency percentiles. The open
// loop shows latency at a set rate; this shows what a delivery costs, so a
// slower receiver shows as fewer answers per second.
func closedLoop(name string, hook *gitlabtest.Hook, body []byte, conns int, d time.Duration) error {
	ctx := context.Background()
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	end := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for time.Now().Before(end) {
				t := time.Now()
				code, _, err := hook.Send(ctx, gitlabtest.Delivery{Event: "Pipeline Hook", Body: body})
				if err != nil || code != 200 {
					bad++
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if len(lat) == 0 {
		return fmt.Errorf("%s: no delivery answered 200 (%d failed)", name, errs)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	fmt.Printf("| %s | %d | %.0f/s | %s | %s | %d |\n", name, conns, float64(len(lat))/took.Seconds(), ms(pct(0.50)), ms(pct(0.99)), errs)
	if errs > 0 {
		return fmt.Errorf("%s: %d deliveries failed", name, errs)
	}
	return nil
}
