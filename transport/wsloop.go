package transport

import (
	"context"
	"log/slog"
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

// maxSlotScratchBytes is the same for each of the passChunk buffers a
// flusher with a ring keeps: one connection's share of a pass.
const maxSlotScratchBytes = 64 << 10

// wsLoop serves a share of the connections with two goroutines: a poller
// that reads every ready socket into one buffer, and a flusher that writes
// every connection with waiting events in one write each (through
// io_uring, a chunk of such writes per system call). Frames that
// arrive while a round is being written wait for the next, so the busier
// the node, the more events share one write.
type wsLoop struct {
	p      *poller
	rbuf   []byte // poller only
	logger *slog.Logger

	mu    sync.Mutex
	dirty []*wsConn
	spare []*wsConn
	wake  chan struct{}

	// Flusher only: the ring that sends a chunk in one system call (nil:
	// one write each), and the chunk's sends.
	ring  *sendRing
	bufs  [passChunk][]byte // by slot in the chunk
	taken []takenConn
	sends []ringSend
}

// takenConn is a connection of a chunk, with the length of the rest of
// its previous write at the head of its bytes.
type takenConn struct {
	c    *wsConn
	held int
}

func newLoop(logger *slog.Logger, withRing bool) (*wsLoop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	l := &wsLoop{p: p, rbuf: make([]byte, readBufferBytes), logger: logger, wake: make(chan struct{}, 1)}
	if withRing {
		if l.ring, err = newSendRing(passChunk); err != nil {
			logger.Info("io_uring not available; writing with write(2)", "err", err)
		}
	}
	return l, nil
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
	defer l.closeRing()
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

// closeRing releases the flusher's ring; the flusher calls it last.
func (l *wsLoop) closeRing() {
	if l.ring != nil {
		l.ring.close()
		l.ring = nil
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
	for i := 0; i < len(list); i += passChunk {
		if i > 0 {
			rest.Reset(time.Microsecond)
			<-rest.C
		}
		chunk := list[i:min(i+passChunk, len(list))]
		if l.ring != nil {
			l.flushRing(chunk)
		} else {
			for _, c := range chunk {
				buf = c.flush(buf)
			}
		}
		if cap(buf) > maxWriteScratchBytes {
			buf = nil
		}
	}
	clear(list)
	l.spare = list[:0]
	return buf
}

// flushRing writes a chunk of connections with one system call. Each
// connection's bytes are taken into its slot's buffer under its lock,
// which is held until the outcome is recorded, as flush holds it around
// its write: the poller's news that a full socket drained must find the
// unwritten rest in place. Should the ring fail before the kernel took
// the sends, they are written one by one and the loop stops using the
// ring; should it fail after, what reached those sockets is unknown, so
// they are closed.
func (l *wsLoop) flushRing(chunk []*wsConn) {
	taken, sends := l.taken[:0], l.sends[:0]
	for _, c := range chunk {
		slot := len(taken)
		c.mu.Lock()
		out, held, ok := c.takeLocked(l.bufs[slot][:0])
		if !ok {
			c.mu.Unlock()
			continue
		}
		l.bufs[slot] = out
		taken = append(taken, takenConn{c: c, held: held})
		sends = append(sends, ringSend{fd: c.fd, buf: out})
	}
	err := l.ring.send(sends)
	if err != nil {
		l.logger.Warn("io_uring send failed; writing with write(2) from now on", "err", err)
		l.closeRing()
	}
	for i, t := range taken {
		out := sends[i].buf
		var n int
		var werr error
		switch res := sends[i].res; res {
		case ringNotSubmitted:
			n, werr = sysWrite(t.c.fd, out)
		case ringInFlight:
			werr = err
		default:
			n, werr = ringResult(res)
		}
		t.c.wroteLocked(out, t.held, n, werr)
		t.c.mu.Unlock()
		if cap(out) > maxSlotScratchBytes {
			l.bufs[i] = nil
		}
	}
	clear(taken)
	clear(sends)
	l.taken, l.sends = taken[:0], sends[:0]
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
			if ev.readable && !l.read(c, ev.ending) {
				next = append(next, pollEvent{fd: ev.fd, readable: true, ending: ev.ending})
			}
		}
		again, next = next, again
	}
}

// read reads c until the socket is empty; false means it still has data
// after maxReadsPerEvent reads and must be read again. A read shorter than
// the buffer emptied the socket, and data that arrives after it raises a
// new edge, so the read that would answer EAGAIN is left out (one system
// call per message at chat rates) unless the event was an end of stream
// or an error (ending), which may sit behind the data with no edge of its
// own.
func (l *wsLoop) read(c *wsConn, ending bool) bool {
	for range maxReadsPerEvent {
		n, err := sysRead(c.fd, l.rbuf)
		if n > 0 {
			c.lastRead.Store(time.Now().UnixNano())
			c.onData(l.rbuf[:n])
			if n < len(l.rbuf) && !ending {
				return true
			}
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
