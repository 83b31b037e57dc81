package main

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// maxSteps bounds the steps (rates, phases) one recorder tells apart.
const maxSteps = 16

// step holds what was received for the messages sent in one step of a
// scenario: message:new deliveries, message:accepted (Kafka has it) and
// message:persisted confirmations, each with its latency from the send time
// carried in the message.
type step struct {
	delivered Histogram
	// deliveredRead is message:new's latency to when the load tool read
	// it, its own wait for a core included.
	deliveredRead Histogram
	accepted      Histogram
	persisted     Histogram
	lastNew       atomic.Int64 // unix nanos of the last message:new
	lastPers      atomic.Int64
}

// recorder reads every frame of a scenario's connections, cheaply: it
// scans for event names and the "ld|step|nanos|" marker instead of
// decoding JSON, so that the load tool keeps up with caasd.
type recorder struct {
	steps    [maxSteps]step
	frames   atomic.Int64
	bytes    atomic.Int64
	accepted atomic.Int64
	failed   atomic.Int64
	errs     atomic.Int64
	closes   atomic.Int64
	other    atomic.Int64

	mu      sync.Mutex
	reasons map[string]int // close reasons and first errors, bounded
}

func newRecorder() *recorder { return &recorder{reasons: map[string]int{}} }

// note counts a distinct diagnostic text, keeping at most 20 of them.
func (r *recorder) note(s string) {
	if len(s) > 200 {
		s = s[:200]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.reasons[s]; ok || len(r.reasons) < 20 {
		r.reasons[s]++
	}
}

// notes returns the diagnostics seen so far.
func (r *recorder) notes() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.reasons))
	for k, v := range r.reasons {
		out[k] = v
	}
	return out
}

func (r *recorder) closed(err error) {
	r.closes.Add(1)
	if err != nil {
		r.note("close: " + err.Error())
	}
}

// Keys the recorder scans for.
const (
	keyEvent   = `{"event":"`
	keyMsgID   = `"message_id":"ld|`
	keyMessage = `"message":"`
	// keyData is what follows an event's name when its data starts with
	// the message id, as caasd writes message:new and its answers.
	keyData = `","data":{"message_id":"ld|`
)

// frame handles one frame that reached c at arrived and that the load tool
// read at read (unix nanos): one event object, or a JSON array of them with
// batch=1. Latencies run to arrived, message:new's also to read. It passes
// over the frame once, looking only at the '{' bytes (a few per event)
// for an event's start: a million deliveries a second must not make the
// load tool the bottleneck it measures.
func (r *recorder) frame(c *conn, b []byte, arrived, read int64) {
	r.frames.Add(1)
	r.bytes.Add(int64(len(b)))
	for {
		i := bytes.IndexByte(b, '{')
		if i < 0 {
			return
		}
		b = b[i:]
		if !bytes.HasPrefix(b, []byte(keyEvent)) {
			b = b[1:]
			continue
		}
		b = b[len(keyEvent):]
		j := bytes.IndexByte(b, '"')
		if j < 0 {
			return
		}
		name := b[:j]
		b = b[j:]
		r.event(c, name, b, arrived, read)
	}
}

// markerWindow is how far after an event's name its message id starts:
// caasd writes the event name first and message_id first in its data.
const markerWindow = 64

// segment is the event starting at b, up to the next one; only for rare
// events, which need more than their message id.
func segment(b []byte) []byte {
	if k := bytes.Index(b, []byte(keyEvent)); k >= 0 {
		return b[:k]
	}
	return b
}

// event records one event; rest is the frame from the event's name on.
func (r *recorder) event(c *conn, name, rest []byte, now, read int64) {
	head := rest[:min(len(rest), markerWindow)]
	switch string(name) {
	case "message:new":
		if s, sent, ok := marker(head); ok {
			st := &r.steps[s]
			st.delivered.Record(time.Duration(now - sent))
			st.deliveredRead.Record(time.Duration(read - sent))
			st.lastNew.Store(now)
		}
	case "message:persisted":
		if s, sent, ok := marker(head); ok {
			st := &r.steps[s]
			st.persisted.Record(time.Duration(now - sent))
			st.lastPers.Store(now)
		}
	case "message:accepted":
		r.accepted.Add(1)
		if s, sent, ok := marker(head); ok {
			r.steps[s].accepted.Record(time.Duration(now - sent))
		}
	case "message:failed":
		r.failed.Add(1)
		r.note("message:failed: " + text(segment(rest), keyMessage))
	case "room:joined":
		select {
		case c.joined <- nil:
		default:
		}
	case "room:error":
		err := errors.New("room:error: " + text(segment(rest), keyMessage))
		select {
		case c.joined <- err:
		default:
		}
		r.errs.Add(1)
		r.note(err.Error())
	case "error":
		r.errs.Add(1)
		r.note("error: " + text(segment(rest), keyMessage))
	default:
		r.other.Add(1)
	}
}

// marker finds "message_id":"ld|step|nanos| in seg, which starts at the
// quote that ends the event's name.
func marker(seg []byte) (step int, nanos int64, ok bool) {
	var rest []byte
	if bytes.HasPrefix(seg, []byte(keyData)) {
		rest = seg[len(keyData):]
	} else {
		i := bytes.Index(seg, []byte(keyMsgID))
		if i < 0 {
			return 0, 0, false
		}
		rest = seg[i+len(keyMsgID):]
	}
	s, rest, ok := digits(rest)
	if !ok || s >= maxSteps {
		return 0, 0, false
	}
	n, _, ok := digits(rest)
	if !ok {
		return 0, 0, false
	}
	return int(s), n, true
}

// digits parses the decimal number that b starts with, up to a '|', and
// returns what follows the '|'.
func digits(b []byte) (n int64, rest []byte, ok bool) {
	for i, c := range b {
		switch {
		case c == '|' && i > 0:
			return n, b[i+1:], true
		case c < '0' || c > '9' || n > (math.MaxInt64-9)/10:
			return 0, nil, false
		}
		n = n*10 + int64(c-'0')
	}
	return 0, nil, false
}

// text returns the JSON string after key in seg (unescaped only roughly).
func text(seg []byte, key string) string {
	i := bytes.Index(seg, []byte(key))
	if i < 0 {
		return string(seg[:min(len(seg), 120)])
	}
	rest := seg[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		j = len(rest)
	}
	return string(rest[:j])
}
