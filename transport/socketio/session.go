package socketio

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/transport"
)

// mode is a session's current transport.
type mode uint8

const (
	modePolling mode = iota
	modeWebSocket
)

// closeKind says how a session ends, which decides its last packets.
type closeKind uint8

const (
	// byServer: the transport is closed; the client reconnects.
	byServer closeKind = iota
	// byServerDisconnect: a Socket.IO DISCONNECT first; the client stays
	// disconnected.
	byServerDisconnect
	// byClient: the client closed; nothing more is due.
	byClient
)

// closeProtocolError is the WebSocket close code for malformed packets.
const closeProtocolError uint16 = 1002

// maxFailedConnects closes a session after that many refused CONNECTs.
const maxFailedConnects = 5

// session is one Engine.IO session and, once its client has sent a
// successful CONNECT, one transport.Conn.
type session struct {
	srv    *Server
	sid    string // Engine.IO sid: the secret that addresses the session
	id     string // transport.Conn id
	sioSID string // Socket.IO sid of the CONNECT reply
	token  string // token of the first request, if any

	mu              sync.Mutex
	closed          bool
	mode            mode
	queue           []*transport.Frame // polling: packets waiting for a GET
	pollActive      bool
	postActive      bool
	pollWake        chan struct{}
	farewell        []byte // polling: the last payload, once closed
	upgrading       bool
	probe           *wsLink
	probeDeadline   time.Time
	ws              *wsLink
	out             *transport.Outbox // WebSocket: the outbound queue
	connected       bool
	connectDeadline time.Time
	nextPing        time.Time
	pongDeadline    time.Time
	awaitingPong    bool

	closing atomic.Bool

	// evMu serialises the handling of the client's packets and guards
	// the fields below.
	evMu           sync.Mutex
	ended          bool
	tsess          transport.Session
	principal      auth.Principal
	failedConnects int
	skipBinary     int
}

// ID implements transport.Conn.
func (s *session) ID() string { return s.id }

// Principal implements transport.Conn.
func (s *session) Principal() auth.Principal { return s.principal }

// Send implements transport.Conn: 42["name",data].
func (s *session) Send(f *transport.Frame) bool { return s.push(f) }

// SendAll implements transport.Conn.
func (s *session) SendAll(fs []*transport.Frame) bool { return s.push(fs...) }

// Reply implements transport.Conn: the event, then 43<ack-1>[data] when
// the client asked for an acknowledgement.
func (s *session) Reply(ack uint64, f *transport.Frame) bool {
	if ack == 0 {
		return s.push(f)
	}
	return s.push(f, rawFrame(encodeAck(ack-1, f.Data)))
}

// Close implements transport.Conn.
func (s *session) Close(code uint16, reason string) {
	how := byServer
	if code == transport.CloseNormal || code == transport.ClosePolicy {
		how = byServerDisconnect
	}
	s.close(code, reason, how)
}

// rawFrame wraps an encoded Engine.IO packet in a frame whose Socket.IO
// encoding is that packet.
func rawFrame(pkt []byte) *transport.Frame {
	f := transport.NewFrame("", nil)
	f.Encoded(transport.CodecSocketIO, func(string, []byte) []byte { return pkt })
	return f
}

// encoded returns a frame's Engine.IO packet.
func encoded(f *transport.Frame) []byte { return f.Encoded(transport.CodecSocketIO, encodeEvent) }

// push queues frames for the client, in order. A full queue closes the
// session as a slow consumer.
func (s *session) push(frames ...*transport.Frame) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if out := s.out; out != nil {
		s.mu.Unlock()
		for _, f := range frames {
			if !out.Push(f) {
				return false
			}
		}
		return true
	}
	if len(s.queue)+len(frames) > s.srv.cfg.OutboundQueueLen {
		s.mu.Unlock()
		s.slow()
		return false
	}
	s.queue = append(s.queue, frames...)
	s.wake()
	s.mu.Unlock()
	return true
}

func (s *session) pushRaw(pkt []byte) bool { return s.push(rawFrame(pkt)) }

// wake tells a pending poll that something changed; s.mu is held.
func (s *session) wake() {
	select {
	case s.pollWake <- struct{}{}:
	default:
	}
}

func (s *session) slow() {
	s.srv.metrics.SlowConsumer()
	s.srv.logger.Info("closing slow socket.io consumer", "conn", s.id)
	s.close(transport.ClosePolicy, "slow_consumer", byServer)
}

func (s *session) writeFailed(err error) {
	s.srv.logger.Debug("socket.io write failed", "conn", s.id, "err", err)
	s.close(transport.CloseGoingAway, "write_failed", byServer)
}

// attach makes l the session's WebSocket transport; s.mu is held or the
// session is not published yet.
func (s *session) attach(l *wsLink) {
	s.ws = l
	s.out = transport.NewOutbox(s.srv.cfg.OutboundQueueLen, l.flush, s.slow, s.writeFailed)
}

// tick sends the heartbeat ping and enforces the timeouts.
func (s *session) tick(now time.Time) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	why := ""
	switch {
	case !s.connected && now.After(s.connectDeadline):
		why = "connect timeout"
	case s.awaitingPong && now.After(s.pongDeadline):
		why = "ping timeout"
	}
	if why != "" {
		s.mu.Unlock()
		s.srv.logger.Debug("closing socket.io session", "sid", s.sid, "conn", s.id, "reason", why)
		s.close(transport.CloseGoingAway, why, byServer)
		return
	}
	var probe *wsLink
	if s.probe != nil && now.After(s.probeDeadline) {
		probe, s.probe, s.upgrading = s.probe, nil, false
	}
	ping := !s.awaitingPong && !now.Before(s.nextPing)
	if ping {
		s.awaitingPong, s.pongDeadline = true, now.Add(s.srv.cfg.PingTimeout)
	}
	s.mu.Unlock()
	if probe != nil {
		probe.abort(transport.CloseNormal, "upgrade timeout")
	}
	if ping {
		s.pushRaw([]byte{eioPing})
	}
}

func (s *session) pong() {
	s.mu.Lock()
	if s.awaitingPong {
		s.awaitingPong, s.nextPing = false, time.Now().Add(s.srv.cfg.PingInterval)
	}
	s.mu.Unlock()
}

// close ends the session once: it stops its transports, unregisters the
// connection and tells the handler's session.
func (s *session) close(code uint16, reason string, how closeKind) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.closing.Store(true)
	connected := s.connected
	disconnect := how == byServerDisconnect && connected
	switch {
	case how == byClient:
		s.farewell = []byte{eioNoop}
	case disconnect:
		s.farewell = appendPayload(nil, []byte(disconnectPacket), []byte{eioClose})
	default:
		s.farewell = []byte{eioClose}
	}
	s.queue = nil
	ws, probe, out := s.ws, s.probe, s.out
	s.probe = nil
	s.wake()
	s.mu.Unlock()

	s.srv.forget(s)
	if connected {
		s.srv.conns.Remove(s)
		s.srv.metrics.ConnClosed()
	}
	if out != nil {
		out.Close()
	}
	if probe != nil {
		probe.abort(code, reason)
	}
	if ws != nil {
		ws.shut(code, reason, disconnect)
	}
	s.tryEnd()
}

// tryEnd calls the handler session's Closed once, after every event.
// Whoever holds evMu when the session closes calls it on release.
func (s *session) tryEnd() {
	if !s.evMu.TryLock() {
		return
	}
	first := !s.ended
	s.ended = true
	ts := s.tsess
	s.evMu.Unlock()
	if first && ts != nil {
		ts.Closed()
	}
}

// register makes the session a live transport.Conn.
func (s *session) register() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.connected = true
	s.srv.conns.Add(s)
	s.srv.metrics.ConnOpened()
	return true
}
