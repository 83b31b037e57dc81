package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram buckets: values below histSub microseconds are exact, larger
// ones fall in log-linear buckets of histSub/2 per power of two (at most
// about 3 % relative error), up to histExp powers of two (over an hour).
const (
	histSub     = 64
	histHalf    = histSub / 2
	histExp     = 40
	histBuckets = histSub + histExp*histHalf
)

// Histogram records latencies in microseconds; it is safe for concurrent use.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Uint64
}

func bucketOf(us uint64) int {
	if us < histSub {
		return int(us)
	}
	e := bits.Len64(us) - 6 // us>>e is in [32, 63]
	i := histSub + (e-1)*histHalf + int(us>>e) - histHalf
	return min(i, histBuckets-1)
}

// upperOf is the largest value that falls in bucket i.
func upperOf(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	e := (i-histSub)/histHalf + 1
	top := uint64((i-histSub)%histHalf + histHalf)
	return (top+1)<<e - 1
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// Count returns the number of recorded latencies.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Quantile returns the q-quantile (0 < q ≤ 1) in milliseconds, rounded up
// to its bucket's upper bound; 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return float64(min(upperOf(i), h.max.Load())) / 1000
		}
	}
	return float64(h.max.Load()) / 1000
}

// Max returns the largest latency in milliseconds.
func (h *Histogram) Max() float64 { return float64(h.max.Load()) / 1000 }

// Latency is the summary of a histogram, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary returns the histogram's count and quantiles.
func (h *Histogram) Summary() Latency {
	return Latency{Count: h.Count(), P50: h.Quantile(0.5), P90: h.Quantile(0.9), P99: h.Quantile(0.99), Max: h.Max()}
}
