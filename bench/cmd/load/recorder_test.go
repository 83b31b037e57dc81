package main

import (
	"testing"
	"time"
)

// newMsg is a message:new event as caasd writes it, for step s sent at nanos.
func newMsg(name string, s int, nanos int64, text string) string {
	return `{"event":"` + name + `","data":{"message_id":"ld|` + itoa(int64(s)) + `|` + itoa(nanos) +
		`|x.1","conversation_id":"c","tenant_id":"t","sender_id":"u","content":{"type":"text","text":"` + text + `"},"seq":3,"created_at":"2026-11-27T00:00:00.000Z"}}`
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int64) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestRecorderFrames(t *testing.T) {
	now := time.Now().UnixNano()
	sent := now - int64(40*time.Millisecond)
	for _, c := range []struct {
		name                         string
		frames                       []string
		delivered, accepted, persist uint64
		failed, other                int64
	}{
		{"one event", []string{newMsg("message:new", 1, sent, "hi")}, 1, 0, 0, 0, 0},
		{"batch of three", []string{"[" + newMsg("message:new", 1, sent, "a") + "," + newMsg("message:accepted", 1, sent, "") + "," + newMsg("message:persisted", 1, sent, "") + "]"}, 1, 1, 1, 0, 0},
		{"text that looks like a key", []string{newMsg("message:new", 1, sent, `\"event\":\"message:new\"`)}, 1, 0, 0, 0, 0},
		{"failed and unknown", []string{`{"event":"message:failed","data":{"message_id":"m","code":"unavailable","message":"busy"}}`, `{"event":"typing","data":{}}`}, 0, 0, 0, 1, 1},
		{"message id not first", []string{`{"event":"message:new","data":{"seq":3,"message_id":"ld|1|` + itoa(sent) + `|x"}}`}, 1, 0, 0, 0, 0},
		{"no marker", []string{`{"event":"message:new","data":{"message_id":"other|1|2|"}}`}, 0, 0, 0, 0, 0},
		{"time overflows", []string{`{"event":"message:new","data":{"message_id":"ld|1|99999999999999999999|x"}}`}, 0, 0, 0, 0, 0},
		{"step out of range", []string{newMsg("message:new", maxSteps, sent, "a")}, 0, 0, 0, 0, 0},
	} {
		r := newRecorder()
		cn := &conn{rec: r, joined: make(chan error, 1)}
		for _, f := range c.frames {
			r.frame(cn, []byte(f), now, now)
		}
		st := &r.steps[1]
		if st.delivered.Count() != c.delivered || st.accepted.Count() != c.accepted || st.persisted.Count() != c.persist ||
			r.failed.Load() != c.failed || r.other.Load() != c.other {
			t.Errorf("%s: delivered %d accepted %d persisted %d failed %d other %d", c.name,
				st.delivered.Count(), st.accepted.Count(), st.persisted.Count(), r.failed.Load(), r.other.Load())
		}
		if c.delivered > 0 {
			if q := st.delivered.Quantile(0.5); q < 30 || q > 60 {
				t.Errorf("%s: latency %v ms, want about 40", c.name, q)
			}
		}
	}
}

// TestRecorderArrivalAndRead: latencies run to the arrival, message:new's
// also to the read.
func TestRecorderArrivalAndRead(t *testing.T) {
	read := time.Now().UnixNano()
	arrived := read - int64(100*time.Millisecond)
	sent := arrived - int64(20*time.Millisecond)
	r := newRecorder()
	cn := &conn{rec: r, joined: make(chan error, 1)}
	r.frame(cn, []byte("["+newMsg("message:new", 2, sent, "a")+","+newMsg("message:persisted", 2, sent, "")+"]"), arrived, read)
	st := &r.steps[2]
	for _, c := range []struct {
		name     string
		h        *Histogram
		min, max float64
	}{
		{"delivered", &st.delivered, 15, 30},
		{"persisted", &st.persisted, 15, 30},
		{"delivered read", &st.deliveredRead, 110, 140},
	} {
		if q := c.h.Quantile(0.5); c.h.Count() != 1 || q < c.min || q > c.max {
			t.Errorf("%s: %d recorded, %v ms, want one of %v–%v ms", c.name, c.h.Count(), q, c.min, c.max)
		}
	}
}

// BenchmarkRecorderBatch is one batch=1 frame of 30 message:new events.
func BenchmarkRecorderBatch(b *testing.B) {
	sent := time.Now().UnixNano()
	f := "["
	for i := range 30 {
		if i > 0 {
			f += ","
		}
		f += newMsg("message:new", 1, sent, "ld|1|"+itoa(sent)+"|x.1 {some} text")
	}
	frame := []byte(f + "]")
	r := newRecorder()
	cn := &conn{rec: r, joined: make(chan error, 1)}
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		r.frame(cn, frame, sent, sent)
	}
	if got := r.steps[1].delivered.Count(); got != uint64(30*b.N) {
		b.Fatalf("recorded %d, want %d", got, 30*b.N)
	}
}
