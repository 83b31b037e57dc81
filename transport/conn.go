// Package transport owns client connections: the WebSocket server (gws),
// authentication at the upgrade, the wire codecs and each connection's
// bounded outbound queue. What an event does is decided elsewhere, by a
// Handler; a codec only turns frames into events and events into frames.
package transport

import (
	"sync"

	"github.com/caasd/caasd/internal/auth"
)

// Conn is one client connection, whatever its codec.
type Conn interface {
	// ID is unique on this node for the node's lifetime.
	ID() string
	// Principal is the authenticated user of the connection.
	Principal() auth.Principal
	// Send queues f for the client. It returns false when the connection is
	// closed, or has just been closed because its queue was full.
	Send(f *Frame) bool
	// SendAll queues fs in order, as Send would one by one, taking the
	// connection's lock once: a room releasing several messages at once
	// hands them to each member together.
	SendAll(fs []*Frame) bool
	// Reply sends f as the answer to a request that carried ack (0: none).
	// Codecs with acknowledgements answer the ack too.
	Reply(ack uint64, f *Frame) bool
	// Close closes the connection with a WebSocket close code and reason.
	Close(code uint16, reason string)
}

// Handler decides what client events do. Open is called once per
// connection, before any event.
type Handler interface {
	Open(c Conn) Session
}

// Session receives one connection's events in order, from one goroutine.
type Session interface {
	// Event handles one client event; data is owned by the session.
	Event(name string, data []byte, ack uint64)
	// Closed is called once when the connection is gone.
	Closed()
}

// Close codes caasd uses.
const (
	CloseNormal         uint16 = 1000
	CloseGoingAway      uint16 = 1001
	ClosePolicy         uint16 = 1008
	CloseTooBig         uint16 = 1009
	CloseServiceRestart uint16 = 1012
	CloseTryAgainLater  uint16 = 1013
)

// Outbox is a bounded outbound queue for a connection with blocking
// writes (Socket.IO's links; /ws queues in wsConn for its event loop). A
// writer goroutine runs only while frames wait, so an idle connection costs
// no goroutine; it takes everything queued at once so frames that wait
// together are written together.
type Outbox struct {
	mu      sync.Mutex
	q       []*Frame
	spare   []*Frame
	max     int
	writing bool
	closed  bool

	flush    func(frames []*Frame) error
	overflow func()
	failed   func(err error)
}

// NewOutbox returns an outbox holding at most max frames. flush writes a
// batch in order; overflow is called once if the queue fills; failed is
// called once if flush fails.
func NewOutbox(max int, flush func([]*Frame) error, overflow func(), failed func(error)) *Outbox {
	return &Outbox{max: max, flush: flush, overflow: overflow, failed: failed}
}

// Push queues f; false means it was not queued.
func (o *Outbox) Push(f *Frame) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	if len(o.q) >= o.max {
		o.closed = true
		o.q = nil
		o.mu.Unlock()
		o.overflow()
		return false
	}
	o.q = append(o.q, f)
	start := !o.writing
	o.writing = true
	o.mu.Unlock()
	if start {
		go o.drain()
	}
	return true
}

// Len returns the number of frames waiting.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.q)
}

// Close drops what waits and refuses further frames.
func (o *Outbox) Close() {
	o.mu.Lock()
	o.closed = true
	o.q = nil
	o.mu.Unlock()
}

// Drained reports whether nothing waits and no write is in flight.
func (o *Outbox) Drained() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.q) == 0 && !o.writing
}

func (o *Outbox) drain() {
	for {
		o.mu.Lock()
		batch := o.q
		if len(batch) == 0 || o.closed {
			o.writing = false
			o.q = nil
			o.mu.Unlock()
			return
		}
		o.q = o.spare[:0]
		o.spare = nil
		o.mu.Unlock()

		err := o.flush(batch)
		clear(batch)

		o.mu.Lock()
		if cap(batch) <= 4*o.max && cap(batch) <= 4096 {
			o.spare = batch[:0]
		}
		o.mu.Unlock()
		if err != nil {
			o.Close()
			o.mu.Lock()
			o.writing = false
			o.mu.Unlock()
			o.failed(err)
			return
		}
	}
}
