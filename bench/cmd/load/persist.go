package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// persistPhase is the pipeline at one send rate.
type persistPhase struct {
	Rate       int    `json:"rate_msgs_per_s"`
	Sent       int    `json:"sent"`
	SendErrors int    `json:"send_errors"`
	Persisted  uint64 `json:"persisted"`
	// PerSecond is persisted confirmations over the time from the first send
	// to the last confirmation: the pipeline's throughput when it is behind.
	PerSecond float64 `json:"persisted_per_s"`
	// WhileSending and AfterSending split PerSecond at the last send: the
	// store's rate while it shares its core with the load, Kafka and
	// Redis, and while it works off what is left with the core nearly
	// to itself.
	WhileSending float64 `json:"persisted_per_s_while_sending"`
	AfterSending float64 `json:"persisted_per_s_after_sending"`
	Latency      Latency `json:"persisted_latency"`
	Delivery     Latency `json:"delivery_latency"`
	Accepted     Latency `json:"accepted_latency"`
	// PublishMs and BatchMs are caasd's mean Kafka publish latency and mean
	// persister batch time (MongoDB insert to published events), BatchSize
	// the mean documents per persister batch.
	PublishMs float64 `json:"kafka_publish_mean_ms"`
	BatchMs   float64 `json:"persist_batch_mean_ms"`
	BatchSize float64 `json:"persist_batch_mean_docs"`
	Failed    int64   `json:"message_failed"`
	ServerCPU float64 `json:"server_cpu_pct"`
	servicesCPU
	RSSKiB int64 `json:"server_rss_kib"`
}

// persistResult is the persist scenario's figures.
type persistResult struct {
	*header
	Raw      rawResult    `json:"raw_bulk_insert"`
	Setup    setup        `json:"setup"`
	RoomSize int          `json:"room_size"`
	Capacity persistPhase `json:"capacity_phase"`
	Ratio    float64      `json:"pipeline_to_raw_ratio"`
	Half     persistPhase `json:"half_raw_rate_phase"`
	// RawAfter is the raw inserts again, into the messages collection as
	// the phases left it; RatioAfter the capacity phase against it.
	RawAfter   rawResultAfter `json:"raw_bulk_insert_after"`
	RatioAfter float64        `json:"pipeline_to_raw_after_ratio"`
	Notes      map[string]int `json:"notes,omitempty"`
}

func (b *bench) persist(ctx context.Context) (any, error) {
	c := b.cfg
	if c.target != targetCaasd {
		return nil, fmt.Errorf("persist measures caasd's pipeline to its store; -target=%s has none", c.target)
	}
	if c.mongoURI == "" {
		return nil, fmt.Errorf("-mongo-uri is required")
	}
	h, cpuLoad := b.begin("persist", c.batch)
	res := &persistResult{header: h, RoomSize: c.persistRoomSize}
	raw, err := b.rawInsertRate(ctx, c.rawDur)
	if err != nil {
		return nil, err
	}
	res.Raw = raw
	specs, _, err := b.layout(ctx, "pers", c.persistConns, c.persistRoomSize, c.batch)
	if err != nil {
		return nil, err
	}
	rec := newRecorder()
	d := newDialer(b.srv, c.addr, c.srcAddrs, 16<<10, rec)
	all, st := connectAll(ctx, d, specs, c.conc)
	defer closeAll(all)
	res.Setup = st
	conns := live(all)
	if len(conns) == 0 {
		return nil, fmt.Errorf("no connection opened: %s", st.FirstError)
	}
	sleep(ctx, 2*time.Second)

	full := c.persistRate
	if full <= 0 {
		full = int(raw.PerSecond)
	}
	res.Capacity = b.persistPhase(ctx, rec, conns, 0, max(full, 1))
	if raw.PerSecond > 0 {
		res.Ratio = float64(int(res.Capacity.PerSecond/raw.PerSecond*1000+0.5)) / 1000
	}
	sleep(ctx, 3*time.Second)
	half := c.persistHalfRate
	if half <= 0 {
		half = int(raw.PerSecond / 2)
	}
	res.Half = b.persistPhase(ctx, rec, conns, 1, max(half, 1))
	if res.RawAfter, err = b.rawInsertRateAfter(ctx, c.rawDur, res.Capacity.Persisted+res.Half.Persisted); err != nil {
		return nil, err
	}
	if res.RawAfter.PerSecond > 0 {
		res.RatioAfter = float64(int(res.Capacity.PerSecond/res.RawAfter.PerSecond*1000+0.5)) / 1000
	}
	res.Notes = rec.notes()
	h.end(cpuLoad)
	return res, nil
}

// persistPhase sends at rate from conns in turn for the phase's duration and
// waits (at most a minute) for every message:persisted.
func (b *bench) persistPhase(ctx context.Context, rec *recorder, conns []*conn, i, rate int) persistPhase {
	c := b.cfg
	st := &rec.steps[i]
	failed := rec.failed.Load()
	cpu, _ := startCPU(b.srv.pid)
	svc := c.startServices()
	pub := b.srv.histSnapshot(ctx, metricPublish)
	per := b.srv.histSnapshot(ctx, metricPersist)
	prof := b.srv.cpuProfile(ctx, c.persistDur-time.Second, c.profileDir, fmt.Sprintf("persist-%d.cpu.pprof", rate))
	start := time.Now()
	tag := b.prefix + ".p" + strconv.Itoa(i) + "."
	out := persistPhase{Rate: rate}
	out.Sent, out.SendErrors = pace(ctx, rate, c.persistDur, func(n int) error {
		s := conns[n%len(conns)]
		return s.send(s.room, i, tag+strconv.Itoa(n))
	})
	sendEnd, atSendEnd := time.Now(), st.persisted.Count()
	<-prof
	waitFor(ctx, max(c.fanDrain, time.Minute), func() bool {
		return st.persisted.Count()+uint64(rec.failed.Load()-failed) >= uint64(out.Sent)
	})
	out.ServerCPU, out.servicesCPU = cpu.pct(), svc.read()
	out.Persisted = st.persisted.Count()
	if last := st.lastPers.Load(); last > start.UnixNano() {
		out.PerSecond = round1(float64(out.Persisted) / time.Duration(last-start.UnixNano()).Seconds())
		out.WhileSending = round1(float64(atSendEnd) / sendEnd.Sub(start).Seconds())
		if after := time.Duration(last - sendEnd.UnixNano()); after > 0 {
			out.AfterSending = round1(float64(out.Persisted-atSendEnd) / after.Seconds())
		}
	}
	out.Latency = st.persisted.Summary()
	out.Delivery = st.delivered.Summary()
	out.Accepted = st.accepted.Summary()
	out.PublishMs, _ = b.srv.meanMsSince(ctx, metricPublish, pub)
	var batches float64
	out.BatchMs, batches = b.srv.meanMsSince(ctx, metricPersist, per)
	if batches > 0 {
		out.BatchSize = round1(float64(out.Persisted) / batches)
	}
	out.Failed = rec.failed.Load() - failed
	out.RSSKiB = b.srv.rss()
	return out
}
