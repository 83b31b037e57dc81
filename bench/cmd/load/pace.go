package main

import (
	"context"
	"time"
)

// pace calls send(i) for i = 0, 1, … at rate per second for d, at most
// rate·d times, catching up in small bursts when it falls behind. It
// returns how many sends were made and how many failed.
func pace(ctx context.Context, rate int, d time.Duration, send func(i int) error) (sent, failed int) {
	total := int(int64(rate) * int64(d) / int64(time.Second))
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	deadline := start.Add(d + d/2) // a send that blocks must not stretch the step without bound
	for sent+failed < total && ctx.Err() == nil && time.Now().Before(deadline) {
		due := min(total, int(float64(rate)*time.Since(start).Seconds()))
		for sent+failed < due {
			if err := send(sent + failed); err != nil {
				failed++
			} else {
				sent++
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	return sent, failed
}

// waitFor polls done every 20 ms until it is true or max has passed.
func waitFor(ctx context.Context, max time.Duration, done func() bool) {
	end := time.Now().Add(max)
	for !done() && time.Now().Before(end) && ctx.Err() == nil {
		sleep(ctx, 20*time.Millisecond)
	}
}
