package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// fanoutStep is the outcome of one send rate.
type fanoutStep struct {
	Rate int `json:"rate_msgs_per_s"`
	deliveries
	// PublishMs is caasd's mean Kafka publish latency (its metric
	// socket_messages_publish_latency_seconds) over the step.
	PublishMs float64 `json:"kafka_publish_mean_ms"`
	ServerCPU float64 `json:"server_cpu_pct"`
	servicesCPU
	LoadCPU     float64 `json:"load_tool_cpu_pct"`
	RSSKiB      int64   `json:"server_rss_kib"`
	Disconnects int64   `json:"disconnects"`
	Sustained   bool    `json:"sustained"`
}

// deliveries is what a run of sends delivered: the figures fanout and
// rooms share.
type deliveries struct {
	Sent       int     `json:"sent"`
	SendErrors int     `json:"send_errors"`
	Expected   int64   `json:"expected_deliveries"`
	Delivered  uint64  `json:"delivered"`
	Lost       int64   `json:"lost"`
	PerSecond  float64 `json:"deliveries_per_s"`
	// Latency runs from the send to the arrival at the receiver's socket
	// (see arrivalConn); ReadLatency to when the load tool read it.
	Latency     Latency `json:"latency"`
	ReadLatency Latency `json:"read_latency"`
	// Accepted is the sender's message:accepted latency: Kafka has the
	// message, and its fan-out starts.
	Accepted Latency `json:"accepted_latency"`
}

// count fills in what recorder step st received of expected deliveries
// of sends that began at start.
func (d *deliveries) count(st *step, expected int64, start time.Time) {
	d.Expected = expected
	d.Delivered = st.delivered.Count()
	d.Lost = max(expected-int64(d.Delivered), 0)
	if last := st.lastNew.Load(); last > start.UnixNano() {
		d.PerSecond = round1(float64(d.Delivered) / time.Duration(last-start.UnixNano()).Seconds())
	}
	d.Latency = st.delivered.Summary()
	d.ReadLatency = st.deliveredRead.Summary()
	d.Accepted = st.accepted.Summary()
}

// fanoutResult is the fanout scenario's figures.
type fanoutResult struct {
	*header
	Members   int                `json:"members"`
	Setup     setup              `json:"setup"`
	Steps     []fanoutStep       `json:"steps"`
	Best      int                `json:"best_sustained_rate"`
	BestPerS  float64            `json:"best_sustained_deliveries_per_s"`
	Failed    int64              `json:"message_failed"`
	Metrics   map[string]float64 `json:"metrics_after"`
	Notes     map[string]int     `json:"notes,omitempty"`
	RSSBefore int64              `json:"rss_before_kib"`
}

func (b *bench) fanout(ctx context.Context, batch bool) (any, error) {
	c := b.cfg
	h, cpu := b.begin("fanout", batch)
	res := &fanoutResult{header: h}
	specs, convs, err := b.layout(ctx, "fan", c.fanMembers, c.fanMembers, batch)
	if err != nil {
		return nil, err
	}
	conv := convs[0]
	rec := newRecorder()
	d := newDialer(b.srv, c.addr, c.srcAddrs, 64<<10, rec)
	all, st := connectAll(ctx, d, specs, c.conc)
	defer closeAll(all)
	res.Setup = st
	conns := live(all)
	if len(conns) == 0 {
		return nil, fmt.Errorf("no connection opened: %s", st.FirstError)
	}
	res.Members = len(conns)
	sender := conns[0]
	sleep(ctx, 2*time.Second) // let presence traffic of the joins pass
	res.RSSBefore = b.srv.rss()

	for i, rate := range c.fanRates {
		if i >= maxSteps {
			break
		}
		prof := b.srv.cpuProfile(ctx, c.fanStep-time.Second, c.profileDir, fmt.Sprintf("fanout-%d.cpu.pprof", rate))
		trace := b.trace(ctx, c.fanStep/2, fmt.Sprintf("fanout-%d.trace", rate))
		s := b.fanoutStep(ctx, rec, sender, conv, i, rate, len(conns))
		<-prof
		<-trace
		res.Steps = append(res.Steps, s)
		if !s.Sustained {
			break
		}
		res.Best, res.BestPerS = rate, s.PerSecond
	}
	if err := b.srv.profile(ctx, "/debug/pprof/heap", c.profileDir, "fanout.heap.pprof"); err != nil {
		return nil, err
	}
	res.Failed = rec.failed.Load()
	res.Metrics = b.srv.metrics(ctx, memGauges()...)
	res.Notes = rec.notes()
	h.end(cpu)
	return res, nil
}

// trace takes a 2 s execution trace of caasd after delay when -trace is set.
func (b *bench) trace(ctx context.Context, delay time.Duration, name string) <-chan struct{} {
	done := make(chan struct{})
	if !b.cfg.trace || b.cfg.profileDir == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		sleep(ctx, delay)
		if err := b.srv.profile(ctx, "/debug/pprof/trace?seconds=2", b.cfg.profileDir, name); err != nil {
			fmt.Fprintln(os.Stderr, "trace:", err)
		}
	}()
	return done
}

func (b *bench) fanoutStep(ctx context.Context, rec *recorder, sender *conn, conv string, i, rate, members int) fanoutStep {
	c := b.cfg
	st := &rec.steps[i]
	closes := rec.closes.Load()
	cpu, _ := startCPU(b.srv.pid)
	svc := c.startServices()
	self, _ := startCPU(os.Getpid())
	pub := b.srv.histSnapshot(ctx, metricPublish)
	start := time.Now()
	tag := b.prefix + ".f" + strconv.Itoa(i) + "."
	sent, failed := pace(ctx, rate, c.fanStep, func(n int) error {
		return sender.send(conv, i, tag+strconv.Itoa(n))
	})
	expected := int64(sent) * int64(members)
	waitFor(ctx, c.fanDrain, func() bool { return int64(st.delivered.Count()) >= expected })
	out := fanoutStep{Rate: rate}
	out.Sent, out.SendErrors = sent, failed
	out.count(st, expected, start)
	out.PublishMs, _ = b.srv.meanMsSince(ctx, metricPublish, pub)
	out.ServerCPU, out.servicesCPU, out.LoadCPU = cpu.pct(), svc.read(), self.pct()
	out.RSSKiB = b.srv.rss()
	out.Disconnects = rec.closes.Load() - closes
	out.Sustained = out.Lost == 0 && out.Disconnects == 0 && failed == 0 &&
		out.Latency.P99 < float64(c.fanP99)/float64(time.Millisecond)
	return out
}
