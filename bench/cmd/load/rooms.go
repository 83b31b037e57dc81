package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// roomsResult is the rooms scenario's figures.
type roomsResult struct {
	*header
	Rooms    int     `json:"rooms"`
	RoomSize int     `json:"room_size"`
	Setup    setup   `json:"setup"`
	Rate     int     `json:"rate_msgs_per_s"`
	Seconds  float64 `json:"seconds"`
	deliveries
	// PersistedSending is message:persisted received while sending: below
	// Sent, the store falls behind and awaiting confirmations pile up.
	PersistedSending uint64  `json:"persisted_while_sending"`
	Persisted        Latency `json:"persisted_latency"`
	PublishMs        float64 `json:"kafka_publish_mean_ms"`
	// PersistBatchMs and PersistBatches are the persister's bulk inserts
	// while sending: their mean duration and their number.
	PersistBatchMs float64 `json:"persist_batch_mean_ms"`
	PersistBatches float64 `json:"persist_batches"`
	ServerCPU      float64 `json:"server_cpu_pct"`
	servicesCPU
	RSSStart int64 `json:"rss_start_kib"`
	RSSEnd   int64 `json:"rss_end_kib"`
	// RSSSamples is caasd's RSS every 5 s while sending.
	RSSSamples  []int64            `json:"rss_samples_kib"`
	Disconnects int64              `json:"disconnects"`
	Failed      int64              `json:"message_failed"`
	Metrics     map[string]float64 `json:"metrics_after"`
	Notes       map[string]int     `json:"notes,omitempty"`
}

func (b *bench) rooms(ctx context.Context) (any, error) {
	c := b.cfg
	h, cpuLoad := b.begin("rooms", c.batch)
	size := max(c.roomsSize, 1)
	nrooms := (c.roomsConns + size - 1) / size
	res := &roomsResult{header: h, Rooms: nrooms, RoomSize: size, Rate: nrooms * c.roomsRate}
	specs, _, err := b.layout(ctx, "rooms", c.roomsConns, size, c.batch)
	if err != nil {
		return nil, err
	}
	rec := newRecorder()
	d := newDialer(b.srv, c.addr, c.srcAddrs, 4096, rec)
	conns, st := connectAll(ctx, d, specs, c.conc)
	defer closeAll(conns)
	res.Setup = st
	livePer := make([]int64, nrooms)
	for i, cn := range conns {
		if cn != nil {
			livePer[i/size]++
		}
	}
	sleep(ctx, 2*time.Second)

	// Send i goes to room i%nrooms from its members in turn, so every room
	// gets its messages evenly spaced.
	var expected int64
	sender := func(i int) *conn {
		r := i % nrooms
		for k := range size {
			j := r*size + (i/nrooms+k)%size
			if j < len(conns) && conns[j] != nil {
				expected += livePer[r]
				return conns[j]
			}
		}
		return nil
	}
	st0 := &rec.steps[0]
	closes := rec.closes.Load()
	res.RSSStart = b.srv.rss()
	prof := b.srv.cpuProfile(ctx, min(20*time.Second, c.roomsDur), c.profileDir, fmt.Sprintf("rooms-batch%v.cpu.pprof", c.batch))
	cpu, err := startCPU(b.srv.pid)
	if err != nil {
		return nil, err
	}
	svc := c.startServices()
	pub := b.srv.histSnapshot(ctx, metricPublish)
	pers := b.srv.histSnapshot(ctx, metricPersist)
	start := time.Now()
	samples := b.sampleRSS(ctx, 5*time.Second)
	trace := b.trace(ctx, c.roomsDur/2, fmt.Sprintf("rooms-batch%v.trace", c.batch))
	tag := b.prefix + ".r."
	res.Sent, res.SendErrors = pace(ctx, res.Rate, c.roomsDur, func(i int) error {
		s := sender(i)
		if s == nil {
			return fmt.Errorf("room %d has no connection", i%nrooms)
		}
		return s.send(s.room, 0, tag+strconv.Itoa(i))
	})
	res.ServerCPU, res.servicesCPU = cpu.pct(), svc.read()
	res.PersistedSending = st0.persisted.Count()
	res.PersistBatchMs, res.PersistBatches = b.srv.meanMsSince(ctx, metricPersist, pers)
	res.Seconds = round1(time.Since(start).Seconds())
	res.RSSSamples = samples()
	<-prof
	<-trace
	waitFor(ctx, c.fanDrain, func() bool { return int64(st0.delivered.Count()) >= expected })
	res.count(st0, expected, start)
	res.Persisted = st0.persisted.Summary()
	res.PublishMs, _ = b.srv.meanMsSince(ctx, metricPublish, pub)
	res.RSSEnd = b.srv.rss()
	res.Disconnects = rec.closes.Load() - closes
	res.Failed = rec.failed.Load()
	if err := b.srv.profile(ctx, "/debug/pprof/heap", c.profileDir, fmt.Sprintf("rooms-batch%v.heap.pprof", c.batch)); err != nil {
		return nil, err
	}
	res.Metrics = b.srv.metrics(ctx, memGauges()...)
	res.Notes = rec.notes()
	h.end(cpuLoad)
	return res, nil
}

// sampleRSS samples caasd's RSS every interval until the returned function
// is called, which returns the samples (at most 1,000).
func (b *bench) sampleRSS(ctx context.Context, interval time.Duration) func() []int64 {
	stop := make(chan struct{})
	done := make(chan []int64, 1)
	go func() {
		var out []int64
		t := time.NewTicker(interval)
		defer t.Stop()
		for len(out) < 1000 {
			select {
			case <-t.C:
				out = append(out, b.srv.rss())
				continue
			case <-stop:
			case <-ctx.Done():
			}
			break
		}
		done <- out
	}()
	return func() []int64 {
		close(stop)
		return <-done
	}
}
