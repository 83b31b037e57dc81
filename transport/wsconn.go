package transport

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
)

// wsConn is one native WebSocket connection. It owns no goroutine and no
// buffer while idle: its loop's poller reads it into the loop's buffer,
// and its loop's flusher writes whatever waits for it in one write.
//
// Reading state (rbuf, frag…) belongs to the poller goroutine (or to the
// upgrading goroutine before the socket is registered). Writing state is
// under mu. Only the poller closes the descriptor, so no other goroutine
// can ever use a number the kernel has given to a new socket.
type wsConn struct {
	id        string
	principal auth.Principal
	server    *WSServer
	loop      *wsLoop
	session   Session
	fd        int
	batch     bool

	lastRead atomic.Int64 // unix nanos of the last bytes read

	// Reading, poller only.
	rbuf     []byte // a frame begun but not complete
	frag     []byte // a fragmented message so far
	fragOp   byte
	fragging bool
	readDone bool // a close frame or a fault ended reading

	mu           sync.Mutex
	q            []*Frame
	ctrl         []byte // control frames to write before the next events
	pending      []byte // bytes of a write the socket did not take yet
	pendingSince time.Time
	dirty        bool // on the flusher's list
	closing      bool // a close frame is queued or written; nothing else goes
	closingSince time.Time
	wrShut       bool // the close frame is written and the write side shut
	closed       bool // the poller released the socket
}

func (c *wsConn) ID() string                    { return c.id }
func (c *wsConn) Principal() auth.Principal     { return c.principal }
func (c *wsConn) Reply(_ uint64, f *Frame) bool { return c.Send(f) }

// Send queues f; a full queue closes the connection as a slow consumer.
func (c *wsConn) Send(f *Frame) bool { return c.SendAll([]*Frame{f}) }

// SendAll queues fs in order; a queue without room for all of them closes
// the connection as a slow consumer.
func (c *wsConn) SendAll(fs []*Frame) bool {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return false
	}
	if len(c.q)+len(fs) > c.server.cfg.OutboundQueueLen {
		c.mu.Unlock()
		c.slow()
		return false
	}
	c.q = append(c.q, fs...)
	c.markDirtyLocked()
	return true
}

// markDirtyLocked puts c on the flusher's list and unlocks mu. A socket
// with unwritten bytes waits for its writable event instead.
func (c *wsConn) markDirtyLocked() {
	sched := !c.dirty && c.pending == nil
	if sched {
		c.dirty = true
	}
	c.mu.Unlock()
	if sched {
		c.loop.schedule(c)
	}
}

// Close sends a close frame with code and reason after what is being
// written, drops what waits, and closes the socket once the client
// answers (or after closeGrace).
func (c *wsConn) Close(code uint16, reason string) {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return
	}
	c.beginCloseLocked(code, reason)
	c.markDirtyLocked()
}

func (c *wsConn) beginCloseLocked(code uint16, reason string) {
	c.closing, c.closingSince = true, time.Now()
	clear(c.q)
	c.q = nil
	c.ctrl = appendCloseFrame(c.ctrl, code, reason)
}

// abort closes the socket at once: for clients that cannot take even a
// close frame.
func (c *wsConn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closing = true
	if c.closingSince.IsZero() {
		c.closingSince = time.Now()
	}
	clear(c.q)
	c.q, c.ctrl, c.pending = nil, nil, nil
	sysShutdown(c.fd) // the poller sees the end of stream and releases it
}

func (c *wsConn) slow() {
	c.server.metrics.SlowConsumer()
	c.server.logger.Info("closing slow consumer", "conn", c.id, "user", c.principal.UserID)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.pending != nil || c.closing { // it takes nothing, not even a close frame
		c.mu.Unlock()
		c.abort()
		return
	}
	c.beginCloseLocked(ClosePolicy, "slow_consumer")
	c.markDirtyLocked()
}

// writeBatchOpen etc. frame several events as one JSON array (batch=1).
const (
	writeBatchOpen  = '['
	writeBatchComma = ','
	writeBatchClose = ']'
)

// flush writes what waits in one write, using buf as scratch, and returns
// buf for reuse. It runs on the flusher.
func (c *wsConn) flush(buf []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out, held, ok := c.takeLocked(buf[:0])
	if !ok {
		return out
	}
	n, err := sysWrite(c.fd, out)
	c.wroteLocked(out, held, n, err)
	return out
}

// takeLocked appends to buf what waits for the socket: the unwritten rest
// of the last write alone if there is one (held is its length), else the
// control frames then the events. ok is false when nothing waits. Events
// stay queued behind a rest, so a client that reads slowly fills its
// queue and is cut off (OutboundQueueLen) instead of growing the rest.
func (c *wsConn) takeLocked(buf []byte) (_ []byte, held int, ok bool) {
	c.dirty = false
	if c.closed {
		return buf, 0, false
	}
	if len(c.pending) > 0 {
		return append(buf, c.pending...), len(c.pending), true
	}
	if len(c.ctrl) == 0 && len(c.q) == 0 {
		c.shutWriteIfDoneLocked()
		return buf, 0, false
	}
	buf = append(buf, c.ctrl...)
	c.ctrl = c.ctrl[:0]
	buf = c.appendEvents(buf)
	clear(c.q)
	if cap(c.q) > 64 {
		c.q = nil
	} else {
		c.q = c.q[:0]
	}
	return buf, 0, true
}

// wroteLocked records that n bytes of out (taken by takeLocked) reached
// the socket, or that writing failed with err. What the socket did not
// take waits for its writable event, and since when counts from the
// first write of it. A rest that went out leaves the frames queued behind
// it to the next pass.
func (c *wsConn) wroteLocked(out []byte, held, n int, err error) {
	switch {
	case err != nil:
		c.writeFailedLocked(err)
	case n < len(out):
		if held == 0 {
			c.pending, c.pendingSince = append([]byte(nil), out[n:]...), time.Now()
		} else {
			c.pending = c.pending[n:]
		}
	case held > 0:
		c.pending = nil
		if len(c.ctrl) > 0 || len(c.q) > 0 {
			c.dirty = true
			c.loop.schedule(c) // lock order: a conn's mu, then the loop's
		} else {
			c.shutWriteIfDoneLocked()
		}
	default:
		c.shutWriteIfDoneLocked()
	}
}

// appendEvents encodes the queued events: one WebSocket message each, or
// with batch=1 one JSON array message when more than one waits.
func (c *wsConn) appendEvents(b []byte) []byte {
	if len(c.q) == 0 {
		return b
	}
	if !c.batch || len(c.q) == 1 {
		for _, f := range c.q {
			p := f.Native()
			b = appendFrameHeader(b, opText, len(p))
			b = append(b, p...)
		}
		return b
	}
	n := 1 + len(c.q) // brackets and commas
	for _, f := range c.q {
		n += len(f.Native())
	}
	b = slices.Grow(b, maxServerHeaderBytes+n)
	b = appendFrameHeader(b, opText, n)
	b = append(b, writeBatchOpen)
	for i, f := range c.q {
		if i > 0 {
			b = append(b, writeBatchComma)
		}
		b = append(b, f.Native()...)
	}
	return append(b, writeBatchClose)
}

// shutWriteIfDoneLocked ends the write side once the close frame is out,
// so the client sees it and closes; the poller then reads the end.
func (c *wsConn) shutWriteIfDoneLocked() {
	if c.closing && !c.wrShut && len(c.ctrl) == 0 && c.pending == nil {
		c.wrShut = true
		sysShutdownWrite(c.fd)
	}
}

func (c *wsConn) writeFailedLocked(err error) {
	c.server.logger.Debug("write failed", "conn", c.id, "err", err)
	c.closing = true
	c.q, c.ctrl, c.pending = nil, nil, nil
	sysShutdown(c.fd)
}

// writable is the poller's news that the socket takes bytes again.
func (c *wsConn) writable() {
	c.mu.Lock()
	if c.pending == nil || c.dirty || c.closed {
		c.mu.Unlock()
		return
	}
	c.dirty = true
	c.mu.Unlock()
	c.loop.schedule(c)
}

// queueControl queues a control frame (pong, ping) ahead of the events.
func (c *wsConn) queueControl(opcode byte, payload []byte) {
	c.mu.Lock()
	if c.closing || c.closed || len(c.ctrl) > 4096 {
		c.mu.Unlock()
		return
	}
	c.ctrl = appendFrameHeader(c.ctrl, opcode, len(payload))
	c.ctrl = append(c.ctrl, payload...)
	c.markDirtyLocked()
}

// check is the sweeper's look at c: a close the client does not answer,
// a write the socket does not take and a silent client end the socket.
func (c *wsConn) check(now time.Time, cfg *WSConfig) {
	c.mu.Lock()
	closing, closingSince := c.closing, c.closingSince
	stuck := c.pending != nil && now.Sub(c.pendingSince) > cfg.WriteTimeout
	c.mu.Unlock()
	switch {
	case closing && now.Sub(closingSince) > closeGrace:
		c.abort()
	case stuck:
		c.slow()
	case now.Sub(time.Unix(0, c.lastRead.Load())) > 3*cfg.PingInterval:
		c.server.logger.Debug("closing silent client", "conn", c.id)
		c.abort()
	}
}

// closeGrace is how long a closing connection waits for the client's
// close before the socket is cut.
const closeGrace = 2 * time.Second

// release is the poller's end of c: the socket is closed and the session
// told. It runs once.
func (c *wsConn) release() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	clear(c.q)
	c.q, c.ctrl, c.pending = nil, nil, nil
	c.loop.p.forget(c.fd)
	sysClose(c.fd)
	c.mu.Unlock()
	c.rbuf, c.frag = nil, nil
	s := c.server
	s.conns.Remove(c)
	s.metrics.ConnClosed()
	c.session.Closed()
}

// onData parses what was read: complete frames are handled, a partial one
// is kept. data may be the loop's buffer: nothing keeps it.
func (c *wsConn) onData(data []byte) {
	if c.readDone {
		return
	}
	buf := data
	if len(c.rbuf) > 0 {
		c.rbuf = append(c.rbuf, data...)
		buf = c.rbuf
	}
	hard := c.server.cfg.HardMaxFrameBytes
	for len(buf) > 0 && !c.readDone {
		f, n, err := parseFrame(buf, hard)
		if errors.Is(err, errShortFrame) {
			break
		}
		if err != nil {
			c.fault(err)
			return
		}
		c.onFrame(f)
		buf = buf[n:]
	}
	switch {
	case c.readDone || len(buf) == 0:
		c.rbuf = nil
	case len(c.rbuf) > 0 && &buf[0] == &c.rbuf[len(c.rbuf)-len(buf)]:
		c.rbuf = append(c.rbuf[:0], buf...)
	default:
		c.rbuf = append([]byte(nil), buf...)
	}
}

// fault ends reading on a protocol error: the client gets the code.
func (c *wsConn) fault(err error) {
	c.readDone = true
	c.rbuf, c.frag = nil, nil
	var fe *frameError
	if errors.As(err, &fe) {
		c.Close(fe.code, fe.reason)
		return
	}
	c.Close(closeProtocolError, err.Error())
}

func (c *wsConn) onFrame(f wsFrame) {
	switch f.opcode {
	case opPing:
		c.queueControl(opPong, f.payload)
	case opPong:
	case opClose:
		c.readDone = true
		code, err := closeCodeOf(f.payload)
		if err != nil {
			c.fault(err)
			return
		}
		if len(f.payload) > 2 && !utf8.Valid(f.payload[2:]) {
			c.fault(&frameError{code: closeInvalidData, reason: "close reason is not UTF-8"})
			return
		}
		c.Close(code, "")
	case opText, opBinary:
		if c.fragging {
			c.fault(protocolError("a new message began inside a fragmented one"))
			return
		}
		if f.fin {
			c.onMessage(f.opcode, f.payload)
			return
		}
		c.fragging, c.fragOp = true, f.opcode
		c.frag = append(c.frag[:0], f.payload...)
	case opContinuation:
		if !c.fragging {
			c.fault(protocolError("continuation without a message"))
			return
		}
		if len(c.frag)+len(f.payload) > c.server.cfg.HardMaxFrameBytes {
			c.fault(&frameError{code: CloseTooBig, reason: fmt.Sprintf("message exceeds the limit of %d bytes", c.server.cfg.HardMaxFrameBytes)})
			return
		}
		c.frag = append(c.frag, f.payload...)
		if f.fin {
			msg := c.frag
			c.fragging, c.frag = false, nil
			c.onMessage(c.fragOp, msg)
		}
	}
}

// onMessage handles one client message; p is not kept.
func (c *wsConn) onMessage(opcode byte, p []byte) {
	max := c.server.cfg.MaxFrameBytes
	switch {
	case opcode != opText:
		c.Send(errorFrame(wire.CodeInvalidMessage, "binary frames are not supported; send JSON text frames"))
	case len(p) > max:
		c.Send(errorFrame(wire.CodeTooLarge, fmt.Sprintf("frame of %d bytes exceeds the limit of %d", len(p), max)))
	case !utf8.Valid(p):
		c.Send(errorFrame(wire.CodeInvalidMessage, "text frames must be valid UTF-8"))
	default:
		name, data, err := DecodeNative(p)
		if err != nil {
			c.Send(errorFrame(wire.CodeInvalidMessage, err.Error()))
			return
		}
		c.session.Event(name, data, 0)
	}
}
