package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/lxzan/gws"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
)

// WSConfig configures the native WebSocket endpoint.
type WSConfig struct {
	// NodeID prefixes connection ids.
	NodeID string
	// MaxFrameBytes is the largest frame handled; larger ones get too_large.
	MaxFrameBytes int
	// HardMaxFrameBytes closes the socket (1009) above it.
	HardMaxFrameBytes int
	// OutboundQueueLen bounds frames waiting for one client.
	OutboundQueueLen int
	// MaxConnections bounds connections on this node.
	MaxConnections int
	// PingInterval is how often the server pings; a client silent for
	// three intervals is dropped.
	PingInterval time.Duration
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration
}

// Metrics is what the transport reports.
type Metrics interface {
	ConnOpened()
	ConnClosed()
	SlowConsumer()
}

// WSServer serves GET /ws: it authenticates the upgrade, runs the native
// JSON codec, and hands events to the Handler.
type WSServer struct {
	cfg      WSConfig
	verifier *auth.Verifier
	handler  Handler
	logger   *slog.Logger
	metrics  Metrics
	upgrader *gws.Upgrader
	conns    *Registry
	nextID   atomic.Uint64
}

// NewWSServer returns the /ws handler.
func NewWSServer(cfg WSConfig, verifier *auth.Verifier, handler Handler, conns *Registry, logger *slog.Logger, metrics Metrics) *WSServer {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 25 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	s := &WSServer{cfg: cfg, verifier: verifier, handler: handler, logger: logger, metrics: metrics, conns: conns}
	s.upgrader = gws.NewUpgrader(&wsEvents{s: s}, &gws.ServerOption{
		ReadMaxPayloadSize: cfg.HardMaxFrameBytes,
		// Client frames are small: a 1 KiB read buffer per connection, not 4.
		ReadBufferSize: 1024,
		// gws would check every outbound frame too; caasd's own JSON is
		// valid UTF-8, so only client frames are checked (OnMessage).
		CheckUtf8Enabled: false,
		HandshakeTimeout: 5 * time.Second,
		NewSession:       func() gws.SessionStorage { return &connSlot{} },
		Logger:           gwsLogger{logger},
		Recovery:         gws.Recovery,
	})
	return s
}

// WriteHTTPError writes a JSON wire error with status.
func WriteHTTPError(w http.ResponseWriter, status int, code wire.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wire.Error{Code: code, Message: msg})
}

// ServeHTTP upgrades an authenticated request to a WebSocket.
func (s *WSServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := s.verifier.Verify(auth.FromRequest(r))
	if err != nil {
		WriteHTTPError(w, http.StatusUnauthorized, wire.CodeUnauthorized, err.Error())
		return
	}
	if s.conns.Len() >= s.cfg.MaxConnections {
		WriteHTTPError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, ErrTooManyConnections.Error())
		return
	}
	socket, err := s.upgrader.Upgrade(w, r)
	if err != nil {
		s.logger.Debug("ws upgrade failed", "err", err)
		return
	}
	c := &wsConn{
		id:        s.cfg.NodeID + "-" + strconv.FormatUint(s.nextID.Add(1), 36),
		principal: p,
		socket:    socket,
		server:    s,
		batch:     r.URL.Query().Get("batch") == "1",
	}
	c.out = NewOutbox(s.cfg.OutboundQueueLen, c.write, c.slow, c.writeFailed)
	socket.Session().(*connSlot).c = c
	_ = socket.SetReadDeadline(time.Now().Add(3 * s.cfg.PingInterval))
	s.conns.Add(c)
	s.metrics.ConnOpened()
	c.session = s.handler.Open(c)
	go socket.ReadLoop()
}

// Run pings every connection each PingInterval until ctx ends.
func (s *WSServer) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.conns.Each(func(c Conn) {
				if wc, ok := c.(*wsConn); ok {
					wc.ping()
				}
			})
		}
	}
}

type wsConn struct {
	id        string
	principal auth.Principal
	socket    *gws.Conn
	server    *WSServer
	out       *Outbox
	session   Session
	batch     bool
	closeOnce sync.Once
}

func (c *wsConn) ID() string                       { return c.id }
func (c *wsConn) Principal() auth.Principal        { return c.principal }
func (c *wsConn) Send(f *Frame) bool               { return c.out.Push(f) }
func (c *wsConn) Reply(_ uint64, f *Frame) bool    { return c.out.Push(f) }
func (c *wsConn) Close(code uint16, reason string) { c.closeWith(code, reason) }

// closeWith sends a close frame without waiting behind a blocked write:
// the write deadline makes a stuck write fail, and the socket is closed.
func (c *wsConn) closeWith(code uint16, reason string) {
	c.closeOnce.Do(func() {
		c.out.Close()
		_ = c.socket.SetWriteDeadline(time.Now().Add(time.Second))
		go func() { _ = c.socket.WriteClose(code, []byte(reason)) }()
	})
}

func (c *wsConn) slow() {
	c.server.metrics.SlowConsumer()
	c.server.logger.Info("closing slow consumer", "conn", c.id, "user", c.principal.UserID)
	c.closeWith(ClosePolicy, "slow_consumer")
}

// writeFailed closes a connection whose write failed; a write that timed
// out is a client that stopped reading, the same as a full queue.
func (c *wsConn) writeFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.slow()
		return
	}
	c.server.logger.Debug("write failed", "conn", c.id, "err", err)
	c.closeWith(CloseGoingAway, "write_failed")
}

func (c *wsConn) ping() {
	_ = c.socket.SetWriteDeadline(time.Now().Add(c.server.cfg.WriteTimeout))
	_ = c.socket.WritePing(nil)
}

var (
	batchOpen  = []byte{'['}
	batchComma = []byte{','}
	batchClose = []byte{']'}
)

// write sends a batch: one frame per event, or with batch=1 one JSON array
// per batch of more than one event.
func (c *wsConn) write(frames []*Frame) error {
	if err := c.socket.SetWriteDeadline(time.Now().Add(c.server.cfg.WriteTimeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	if c.batch && len(frames) > 1 {
		parts := make([][]byte, 0, 2*len(frames)+1)
		parts = append(parts, batchOpen)
		for i, f := range frames {
			if i > 0 {
				parts = append(parts, batchComma)
			}
			parts = append(parts, f.Native())
		}
		parts = append(parts, batchClose)
		return c.socket.Writev(gws.OpcodeText, parts...)
	}
	for _, f := range frames {
		if err := c.socket.WriteMessage(gws.OpcodeText, f.Native()); err != nil {
			return err
		}
	}
	return nil
}

// errorFrame builds an "error" event.
func errorFrame(code wire.Code, msg string) *Frame {
	return NewFrame(wire.EvError, wire.Marshal(wire.Error{Code: code, Message: msg}))
}

// connSlot is the per-socket storage gws asks for; caasd keeps only its
// connection in it.
type connSlot struct{ c *wsConn }

func (s *connSlot) Len() int                     { return 0 }
func (s *connSlot) Load(string) (any, bool)      { return nil, false }
func (s *connSlot) Delete(string)                {}
func (s *connSlot) Store(string, any)            {}
func (s *connSlot) Range(func(string, any) bool) {}

type wsEvents struct{ s *WSServer }

func connOf(socket *gws.Conn) *wsConn { return socket.Session().(*connSlot).c }

func (e *wsEvents) OnOpen(*gws.Conn) {}

func (e *wsEvents) OnClose(socket *gws.Conn, err error) {
	c := connOf(socket)
	c.closeOnce.Do(func() { c.out.Close() })
	e.s.conns.Remove(c)
	e.s.metrics.ConnClosed()
	c.session.Closed()
}

func (e *wsEvents) OnPing(socket *gws.Conn, payload []byte) {
	c := connOf(socket)
	_ = socket.SetReadDeadline(time.Now().Add(3 * e.s.cfg.PingInterval))
	_ = socket.SetWriteDeadline(time.Now().Add(e.s.cfg.WriteTimeout))
	_ = c.socket.WritePong(payload)
}

func (e *wsEvents) OnPong(socket *gws.Conn, _ []byte) {
	_ = socket.SetReadDeadline(time.Now().Add(3 * e.s.cfg.PingInterval))
}

func (e *wsEvents) OnMessage(socket *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	c := connOf(socket)
	_ = socket.SetReadDeadline(time.Now().Add(3 * e.s.cfg.PingInterval))
	if msg.Opcode != gws.OpcodeText {
		c.Send(errorFrame(wire.CodeInvalidMessage, "binary frames are not supported; send JSON text frames"))
		return
	}
	if !utf8.Valid(msg.Bytes()) {
		c.Send(errorFrame(wire.CodeInvalidMessage, "text frames must be valid UTF-8"))
		return
	}
	if msg.Data.Len() > e.s.cfg.MaxFrameBytes {
		c.Send(errorFrame(wire.CodeTooLarge, fmt.Sprintf("frame of %d bytes exceeds the limit of %d", msg.Data.Len(), e.s.cfg.MaxFrameBytes)))
		return
	}
	name, data, err := DecodeNative(msg.Bytes())
	if err != nil {
		c.Send(errorFrame(wire.CodeInvalidMessage, err.Error()))
		return
	}
	c.session.Event(name, data, 0)
}

// DecodeNative parses a native client frame {"event":…,"data":…}. The
// returned data is a copy the caller owns.
func DecodeNative(frame []byte) (name string, data []byte, err error) {
	var in wire.Inbound
	if err := json.Unmarshal(frame, &in); err != nil {
		return "", nil, fmt.Errorf("malformed frame: %w", err)
	}
	if in.Event == "" {
		return "", nil, errors.New("malformed frame: \"event\" is required")
	}
	if len(in.Event) > 64 {
		return "", nil, errors.New("malformed frame: event name too long")
	}
	return in.Event, in.Data, nil
}

type gwsLogger struct{ l *slog.Logger }

func (g gwsLogger) Error(v ...any) { g.l.Error("gws", "msg", fmt.Sprint(v...)) }
