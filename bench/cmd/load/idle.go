package main

import (
	"context"
	"fmt"
	"time"
)

// idleResult is the idle scenario's figures.
type idleResult struct {
	*header
	Setup      setup   `json:"setup"`
	RoomSize   int     `json:"room_size"`
	RSSBefore  int64   `json:"rss_before_kib"`
	RSSAfter   int64   `json:"rss_after_kib"`
	KiBPerConn float64 `json:"kib_per_conn"`
	// RSSNoGC and KiBPerConnNoGC are read before caasd is made to collect.
	RSSNoGC        int64              `json:"rss_after_nogc_kib"`
	KiBPerConnNoGC float64            `json:"kib_per_conn_nogc"`
	Hold           memTrend           `json:"hold"`
	Metrics        map[string]float64 `json:"metrics_after"`
	MetricsBefore  map[string]float64 `json:"metrics_before"`
	Closed         int64              `json:"closed_by_server"`
	Notes          map[string]int     `json:"notes,omitempty"`
}

// memTrend is caasd's RSS sampled once a second while nothing changes.
type memTrend struct {
	Seconds  float64 `json:"seconds"`
	MinKiB   int64   `json:"min_kib"`
	MaxKiB   int64   `json:"max_kib"`
	FirstKiB int64   `json:"first_kib"`
	LastKiB  int64   `json:"last_kib"`
}

// memGauges are the gauges of caasd's /metrics read beside RSS: the Go
// runtime's, and the messages awaiting confirmation, which hold memory.
func memGauges() []string {
	return []string{"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines", "go_memstats_sys_bytes", "socket_delivery_pending"}
}

func (b *bench) idle(ctx context.Context) (any, error) {
	c := b.cfg
	h, cpu := b.begin("idle", c.batch)
	res := &idleResult{header: h, RoomSize: c.idleRoomSize}
	kind := fmt.Sprintf("idle%d", c.idleConns)
	specs, _, err := b.layout(ctx, kind, c.idleConns, c.idleRoomSize, c.batch)
	if err != nil {
		return nil, err
	}
	rec := newRecorder()
	d := newDialer(b.srv, c.addr, c.srcAddrs, 4096, rec)

	if err := b.srv.forceGC(ctx, "", ""); err != nil {
		return nil, err
	}
	time.Sleep(time.Second)
	res.RSSBefore = b.srv.rss()
	res.MetricsBefore = b.srv.metrics(ctx, memGauges()...)

	prof := b.srv.cpuProfile(ctx, 15*time.Second, c.profileDir, fmt.Sprintf("idle-%d-batch%v-setup.cpu.pprof", c.idleConns, c.batch))
	conns, st := connectAll(ctx, d, specs, c.conc)
	res.Setup = st
	defer closeAll(conns)
	<-prof

	sleep(ctx, c.idleSettle)
	res.RSSNoGC = b.srv.rss()
	if err := b.srv.forceGC(ctx, c.profileDir, fmt.Sprintf("idle-%d-batch%v.heap.pprof", c.idleConns, c.batch)); err != nil {
		return nil, err
	}
	sleep(ctx, 2*time.Second)
	res.RSSAfter = b.srv.rss()
	if n := float64(st.Conns); n > 0 {
		res.KiBPerConn = round1(float64(res.RSSAfter-res.RSSBefore) / n)
		res.KiBPerConnNoGC = round1(float64(res.RSSNoGC-res.RSSBefore) / n)
	}
	res.Metrics = b.srv.metrics(ctx, memGauges()...)
	res.Hold = b.holdRSS(ctx, c.idleHold)
	res.Closed = rec.closes.Load()
	res.Notes = rec.notes()
	h.end(cpu)
	return res, nil
}

// holdRSS samples caasd's RSS once a second for d.
func (b *bench) holdRSS(ctx context.Context, d time.Duration) memTrend {
	start := time.Now()
	t := memTrend{FirstKiB: b.srv.rss()}
	t.MinKiB, t.MaxKiB = t.FirstKiB, t.FirstKiB
	for time.Since(start) < d && ctx.Err() == nil {
		sleep(ctx, time.Second)
		v := b.srv.rss()
		t.MinKiB, t.MaxKiB, t.LastKiB = min(t.MinKiB, v), max(t.MaxKiB, v), v
	}
	t.Seconds = round1(time.Since(start).Seconds())
	return t
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
