package socketio

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/lxzan/gws"

	"github.com/caasd/caasd/transport"
)

// wsLink is one WebSocket of a session: its transport once upgraded (or
// from the start), or a probe before that.
type wsLink struct {
	sess   *session
	socket *gws.Conn
}

// flush writes a batch of packets, one WebSocket message each.
func (l *wsLink) flush(frames []*transport.Frame) error {
	if err := l.socket.SetWriteDeadline(time.Now().Add(l.sess.srv.cfg.WriteTimeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	for _, f := range frames {
		if err := l.socket.WriteMessage(gws.OpcodeText, encoded(f)); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

// shut sends a close frame (after a DISCONNECT packet if disconnect)
// without blocking the caller behind a stuck write.
func (l *wsLink) shut(code uint16, reason string, disconnect bool) {
	l.sess.srv.spawn(func() {
		_ = l.socket.SetWriteDeadline(time.Now().Add(time.Second))
		if disconnect {
			_ = l.socket.WriteString(disconnectPacket)
		}
		_ = l.socket.WriteClose(code, []byte(reason))
	})
}

// abort closes a probe that does not become the transport.
func (l *wsLink) abort(code uint16, reason string) { l.shut(code, reason, false) }

// openWebSocket starts a session whose client connected with WebSocket
// directly (transports: ['websocket']).
func (srv *Server) openWebSocket(w http.ResponseWriter, r *http.Request) {
	if err := srv.admit(); err != nil {
		httpError(w, http.StatusServiceUnavailable, eioErrForbidden, "Forbidden", err)
		return
	}
	socket, err := srv.upgrader.Upgrade(w, r)
	if err != nil {
		srv.logger.Debug("socket.io websocket upgrade failed", "err", err)
		return
	}
	s, err := srv.newSession(r, socket)
	if err != nil {
		_ = socket.SetWriteDeadline(time.Now().Add(time.Second))
		_ = socket.WriteClose(transport.CloseTryAgainLater, []byte(err.Error()))
		return
	}
	socket.Session().(*linkSlot).l = s.ws
	s.pushRaw(srv.handshake(s, false))
	srv.spawn(socket.ReadLoop)
}

// probeUpgrade accepts the WebSocket that probes the upgrade of a polling
// session; it becomes the transport when the client sends "5".
func (s *session) probeUpgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		unknownSession(w)
		return
	case s.mode != modePolling || s.probe != nil:
		s.mu.Unlock()
		badRequest(w, fmt.Errorf("%w: the session is already upgraded or upgrading", ErrBadRequest))
		return
	}
	s.mu.Unlock()
	socket, err := s.srv.upgrader.Upgrade(w, r)
	if err != nil {
		s.srv.logger.Debug("socket.io websocket upgrade failed", "sid", s.sid, "err", err)
		return
	}
	l := &wsLink{sess: s, socket: socket}
	socket.Session().(*linkSlot).l = l
	s.mu.Lock()
	if s.closed || s.mode != modePolling || s.probe != nil {
		s.mu.Unlock()
		l.abort(transport.CloseNormal, "upgrade refused")
		return
	}
	s.probe, s.probeDeadline = l, time.Now().Add(s.srv.cfg.UpgradeTimeout)
	s.mu.Unlock()
	s.srv.spawn(socket.ReadLoop)
}

// probeMessage handles a message on a probe: "2probe" is answered with
// "3probe" (and the pending poll is ended with a noop so that the client
// can pause polling), "5" completes the upgrade.
func (s *session) probeMessage(l *wsLink, text bool, data []byte) {
	msg := string(data)
	s.mu.Lock()
	if s.closed || s.probe != l || !text || (msg != "2probe" && msg != "5") || (msg == "5" && !s.upgrading) {
		s.mu.Unlock()
		l.abort(closeProtocolError, "unexpected packet during upgrade")
		return
	}
	if msg == "2probe" {
		s.upgrading = true
		s.wake()
		s.mu.Unlock()
		_ = l.socket.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
		_ = l.socket.WriteString("3probe")
		return
	}
	// "5": from now on the WebSocket is the transport. What waits for a
	// poll moves to the WebSocket's queue first, in order.
	s.probe, s.upgrading, s.mode = nil, false, modeWebSocket
	s.attach(l)
	for _, f := range s.queue {
		s.out.Push(f) // cannot overflow: len(queue) ≤ OutboundQueueLen
	}
	s.queue = nil
	s.wake()
	s.mu.Unlock()
}

// wsMessage handles a message on one of the session's WebSockets.
func (s *session) wsMessage(l *wsLink, text bool, data []byte) {
	s.mu.Lock()
	active := s.ws == l
	s.mu.Unlock()
	if !active {
		s.probeMessage(l, text, data)
		return
	}
	var err error
	if !text {
		err = s.receive([]eioPacket{{Type: eioMessage, Binary: true}})
	} else {
		var p eioPacket
		if p, err = decodeEIOPacket(data, false); err == nil {
			err = s.receive([]eioPacket{p})
		}
	}
	if err != nil {
		s.srv.logger.Debug("malformed engine.io packet", "sid", s.sid, "err", err)
		s.close(closeProtocolError, "malformed engine.io packet", byServer)
	}
}

// linkClosed handles the end of a WebSocket: a probe's end abandons the
// upgrade, the transport's end closes the session.
func (s *session) linkClosed(l *wsLink) {
	s.mu.Lock()
	switch l {
	case s.probe:
		s.probe, s.upgrading = nil, false
		s.mu.Unlock()
	case s.ws:
		s.mu.Unlock()
		s.close(transport.CloseGoingAway, "websocket closed", byClient)
	default:
		s.mu.Unlock()
	}
}

// linkSlot is the per-socket storage gws asks for; it holds the link.
type linkSlot struct{ l *wsLink }

func (s *linkSlot) Len() int                     { return 0 }
func (s *linkSlot) Load(string) (any, bool)      { return nil, false }
func (s *linkSlot) Delete(string)                {}
func (s *linkSlot) Store(string, any)            {}
func (s *linkSlot) Range(func(string, any) bool) {}

// wsEvents receives gws's callbacks for every socket of the server.
type wsEvents struct{}

func linkOf(socket *gws.Conn) *wsLink { return socket.Session().(*linkSlot).l }

func (wsEvents) OnOpen(*gws.Conn) {}

func (wsEvents) OnClose(socket *gws.Conn, _ error) {
	if l := linkOf(socket); l != nil {
		l.sess.linkClosed(l)
	}
}

func (wsEvents) OnPing(socket *gws.Conn, payload []byte) { _ = socket.WritePong(payload) }

func (wsEvents) OnPong(*gws.Conn, []byte) {}

func (wsEvents) OnMessage(socket *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	if l := linkOf(socket); l != nil {
		l.sess.wsMessage(l, msg.Opcode == gws.OpcodeText, msg.Bytes())
	}
}

type gwsLogger struct{ l *slog.Logger }

func (g gwsLogger) Error(v ...any) { g.l.Error("gws", "msg", fmt.Sprint(v...)) }
