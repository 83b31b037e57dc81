package transport

import (
	"context"
	"sync"
	"time"
)

// readBufferBytes is each loop's read buffer, shared by all its sockets.
const readBufferBytes = 64 << 10

// maxReadsPerEvent bounds how long one busy socket holds the poller
// before the others get their turn.
const maxReadsPerEvent = 8

// maxWriteScratchBytes is the largest write buffer a flusher keeps between
// rounds; a larger one (a rare huge batch) is dropped after use.
const maxWriteScratchBytes = 1 << 20

// wsLoop serves a share of the connections with two goroutines: a poller
// that reads every ready socket into one buffer, and a flusher that writes
// every connection with waiting events in one write each. Frames that
// arrive while a round is being written wait for the next, so the busier
// the node, the more events share one write.
type wsLoop struct {
	p    *poller
	rbuf []byte // poller only

	mu    sync.Mutex
	dirty []*wsConn
	spare []*wsConn
	wake  chan struct{}
}

func newLoop() (*wsLoop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	return &wsLoop{p: p, rbuf: make([]byte, readBufferBytes), wake: make(chan struct{}, 1)}, nil
}

// schedule puts c, just marked dirty, on the flusher's list.
func (l *wsLoop) schedule(c *wsConn) {
	l.mu.Lock()
	l.dirty = append(l.dirty, c)
	first := len(l.dirty) == 1
	l.mu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// pacedPassMin is the length of a flush pass from which the flusher
// rests as long as the pass took (at most pacedPauseMax) before the next:
// write syscalls are most of a busy node's CPU (about 7 µs each on
// loopback), so a node that spends half its time writing lets the events
// of the other half gather into the same writes, and leaves the other
// goroutines (Kafka, Redis, actors) the core meanwhile. Short passes, as
// at chat rates, do not wait.
const (
	pacedPassMin  = time.Millisecond
	pacedPauseMax = 25 * time.Millisecond
)

// runFlusher writes dirty connections until ctx ends, then once more, so
// that close frames queued by a shutdown go out.
func (l *wsLoop) runFlusher(ctx context.Context) {
	var buf []byte
	pause, rest := time.NewTimer(time.Hour), time.NewTimer(time.Hour)
	pause.Stop()
	rest.Stop()
	defer pause.Stop()
	for {
		select {
		case <-ctx.Done():
			for l.pending() {
				buf = l.flushPass(buf, rest)
			}
			return
		case <-l.wake:
		}
		start := time.Now()
		buf = l.flushPass(buf, rest)
		if d := time.Since(start); d >= pacedPassMin {
			pause.Reset(min(d, pacedPauseMax))
			select {
			case <-pause.C:
			case <-ctx.Done():
			}
		}
	}
}

func (l *wsLoop) pending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.dirty) > 0
}

// passChunk is how many connections a pass writes before it steps aside
// for a moment: a pass of a thousand writes holds the core for several
// milliseconds, and goroutines woken by the network (Kafka acks, Redis
// replies) run only when the running one parks.
const passChunk = 64

// flushPass writes every connection dirty at its start once.
func (l *wsLoop) flushPass(buf []byte, rest *time.Timer) []byte {
	l.mu.Lock()
	list := l.dirty
	l.dirty = l.spare // the two lists take turns
	l.mu.Unlock()
	for i, c := range list {
		if i > 0 && i%passChunk == 0 {
			rest.Reset(time.Microsecond)
			<-rest.C
		}
		buf = c.flush(buf)
		if cap(buf) > maxWriteScratchBytes {
			buf = nil
		}
	}
	clear(list)
	l.spare = list[:0]
	return buf
}

// runPoller reads ready sockets until the poller is closed.
func (l *wsLoop) runPoller() {
	raw := newPollEvents()
	var events, again, next []pollEvent
	for {
		var err error
		events, err = l.p.wait(raw, events[:0], len(again) == 0)
		if err != nil {
			return
		}
		next = next[:0]
		for _, ev := range append(events, again...) {
			c := l.p.conn(ev.fd)
			if c == nil {
				continue
			}
			if ev.writable {
				c.writable()
			}
			if ev.readable && !l.read(c) {
				next = append(next, pollEvent{fd: ev.fd, readable: true})
			}
		}
		again, next = next, again
	}
}

// read reads c until the socket is empty (edge-triggered: an end of
// stream behind the data gives no new edge); false means it still has data
// after maxReadsPerEvent reads and must be read again.
func (l *wsLoop) read(c *wsConn) bool {
	for range maxReadsPerEvent {
		n, err := sysRead(c.fd, l.rbuf)
		if n > 0 {
			c.lastRead.Store(time.Now().UnixNano())
			c.onData(l.rbuf[:n])
			continue
		}
		if err != nil && isWouldBlock(err) {
			return true
		}
		c.release() // end of stream or an error
		return true
	}
	return false
}

// stop ends runPoller.
func (l *wsLoop) stop() { l.p.close() }
