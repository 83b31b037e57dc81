package transport

import (
	"bytes"
	"testing"
)

// TestUnwrittenRestGoesAloneAndBoundsTheQueue: while the socket has not
// taken the rest of a write, a flush writes that rest alone and the frames
// queued behind it stay in the queue, where OutboundQueueLen bounds them
// (a client that reads, but too slowly, is cut off instead of growing the
// rest). Once the rest is out, the connection is flushed again for them.
func TestUnwrittenRestGoesAloneAndBoundsTheQueue(t *testing.T) {
	l := &wsLoop{wake: make(chan struct{}, 1)}
	c := &wsConn{loop: l, pending: []byte("rest-of-a-write"), q: []*Frame{NewFrame("n", []byte("1")), NewFrame("n", []byte("2"))}}
	c.mu.Lock()
	defer c.mu.Unlock()

	out, held, ok := c.takeLocked(nil)
	if !ok || held != len("rest-of-a-write") || !bytes.Equal(out, []byte("rest-of-a-write")) {
		t.Fatalf("took %q (held %d, %v), want the rest alone", out, held, ok)
	}
	if len(c.q) != 2 {
		t.Fatalf("%d frames left queued, want 2", len(c.q))
	}
	c.wroteLocked(out, held, 5, nil) // the socket took 5 bytes
	if string(c.pending) != "of-a-write" || len(c.q) != 2 || c.dirty {
		t.Fatalf("after a partial write: rest %q, %d queued, dirty %v", c.pending, len(c.q), c.dirty)
	}

	out, held, _ = c.takeLocked(out[:0])
	c.wroteLocked(out, held, len(out), nil) // the rest went out
	if c.pending != nil || len(c.q) != 2 || !c.dirty || len(l.dirty) != 1 || l.dirty[0] != c {
		t.Fatalf("after the rest: rest %q, %d queued, dirty %v, flusher's list %d", c.pending, len(c.q), c.dirty, len(l.dirty))
	}
}
