package socketio

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/transport"
)

// Server serves /socket.io/ (Engine.IO v4, Socket.IO v5). It implements
// http.Handler; Run drives heartbeats and timeouts, Close ends every
// session. Sessions are held in this node's memory: see the package
// documentation about sticky sessions.
type Server struct {
	cfg      Config
	verifier *auth.Verifier
	handler  transport.Handler
	conns    *transport.Registry
	logger   *slog.Logger
	metrics  transport.Metrics
	upgrader *gws.Upgrader

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
	done     chan struct{}

	nextID atomic.Uint64
	// running counts the goroutines this server started (WebSocket read
	// loops and close writers); Close waits for them.
	running atomic.Int64
}

// NewServer returns the /socket.io/ handler. Connections are registered
// in conns; their events go to handler. Call Run to start heartbeats.
func NewServer(cfg Config, verifier *auth.Verifier, handler transport.Handler, conns *transport.Registry, logger *slog.Logger, metrics transport.Metrics) *Server {
	cfg = cfg.withDefaults()
	srv := &Server{
		cfg: cfg, verifier: verifier, handler: handler, conns: conns, logger: logger, metrics: metrics,
		sessions: make(map[string]*session), done: make(chan struct{}),
	}
	srv.upgrader = gws.NewUpgrader(&wsEvents{}, &gws.ServerOption{
		ReadMaxPayloadSize: cfg.MaxPayloadBytes,
		ReadBufferSize:     4096,
		CheckUtf8Enabled:   true,
		HandshakeTimeout:   5 * time.Second,
		NewSession:         func() gws.SessionStorage { return &linkSlot{} },
		Logger:             gwsLogger{logger},
		Recovery:           gws.Recovery,
	})
	return srv
}

// ServeHTTP routes an Engine.IO request: handshake, poll, post or
// WebSocket (direct or upgrade).
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q := r.URL.Query()
	if v := q.Get("EIO"); v != "4" {
		httpError(w, http.StatusBadRequest, eioErrVersion, "Unsupported protocol version",
			fmt.Errorf("%w: EIO=%q; only Engine.IO v4 (socket.io-client 3.x/4.x) is served", ErrUnsupportedVersion, v))
		return
	}
	if q.Has("j") {
		badRequest(w, fmt.Errorf("%w: JSONP polling is not supported", ErrBadRequest))
		return
	}
	sid := q.Get("sid")
	tr := q.Get("transport")
	if tr != "polling" && tr != "websocket" {
		httpError(w, http.StatusBadRequest, eioErrTransportUnknown, "Transport unknown", fmt.Errorf("%w: %q", ErrUnknownTransport, tr))
		return
	}
	if sid == "" {
		if r.Method != http.MethodGet {
			httpError(w, http.StatusBadRequest, eioErrBadHandshake, "Bad handshake method", fmt.Errorf("%w: a handshake is a GET", ErrBadRequest))
			return
		}
		if tr == "polling" {
			srv.openPolling(w, r)
		} else {
			srv.openWebSocket(w, r)
		}
		return
	}
	s := srv.lookup(sid)
	if s == nil {
		unknownSession(w)
		return
	}
	switch {
	case tr == "websocket" && r.Method == http.MethodGet:
		s.probeUpgrade(w, r)
	case tr == "polling" && r.Method == http.MethodGet:
		s.poll(w, r)
	case tr == "polling" && r.Method == http.MethodPost:
		s.post(w, r)
	default:
		badRequest(w, fmt.Errorf("%w: method %s", ErrBadRequest, r.Method))
	}
}

// Run sends heartbeats and enforces the timeouts until ctx ends or Close
// is called; when ctx ends it closes every session.
func (srv *Server) Run(ctx context.Context) {
	t := time.NewTicker(srv.cfg.tick())
	defer t.Stop()
	var batch []*session
	for {
		select {
		case <-ctx.Done():
			srv.Close(transport.CloseGoingAway, "server stopping")
			return
		case <-srv.done:
			return
		case now := <-t.C:
			srv.mu.Lock()
			for _, s := range srv.sessions {
				batch = append(batch, s)
			}
			srv.mu.Unlock()
			for _, s := range batch {
				s.tick(now)
			}
			clear(batch)
			batch = batch[:0]
		}
	}
}

// Close refuses new sessions, closes every session (WebSocket clients get
// code and reason; pending polls get a close packet) and waits up to two
// seconds for the server's goroutines to end. Clients reconnect unless
// code is transport.CloseNormal or transport.ClosePolicy.
func (srv *Server) Close(code uint16, reason string) {
	srv.mu.Lock()
	if !srv.closed {
		srv.closed = true
		close(srv.done)
	}
	all := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.Unlock()
	for _, s := range all {
		s.Close(code, reason)
	}
	deadline := time.Now().Add(2 * time.Second)
	for srv.running.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// Len returns the number of Engine.IO sessions.
func (srv *Server) Len() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

// spawn runs f on a goroutine Close waits for.
func (srv *Server) spawn(f func()) {
	srv.running.Add(1)
	go func() {
		defer srv.running.Add(-1)
		f()
	}()
}

func (srv *Server) lookup(sid string) *session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.sessions[sid]
}

func (srv *Server) forget(s *session) {
	srv.mu.Lock()
	if srv.sessions[s.sid] == s {
		delete(srv.sessions, s.sid)
	}
	srv.mu.Unlock()
}

// admit reports whether a new session may open.
func (srv *Server) admit() error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	switch {
	case srv.closed:
		return ErrServerClosed
	case len(srv.sessions) >= srv.cfg.MaxSessions:
		return ErrTooManySessions
	}
	return nil
}

// newSession creates and publishes a session; ws is its WebSocket when
// the client connected with WebSocket directly.
func (srv *Server) newSession(r *http.Request, ws *gws.Conn) (*session, error) {
	now := time.Now()
	s := &session{
		srv:             srv,
		sid:             rand.Text(),
		id:              srv.cfg.NodeID + "-sio-" + strconv.FormatUint(srv.nextID.Add(1), 36),
		sioSID:          rand.Text(),
		token:           auth.FromRequest(r),
		pollWake:        make(chan struct{}, 1),
		connectDeadline: now.Add(srv.cfg.ConnectTimeout),
		nextPing:        now.Add(srv.cfg.PingInterval),
	}
	if ws != nil {
		s.mode = modeWebSocket
		s.attach(&wsLink{sess: s, socket: ws})
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	switch {
	case srv.closed:
		return nil, ErrServerClosed
	case len(srv.sessions) >= srv.cfg.MaxSessions:
		return nil, ErrTooManySessions
	}
	srv.sessions[s.sid] = s
	return s, nil
}

func (srv *Server) handshake(s *session, upgrades bool) []byte {
	return encodeOpen(handshake{
		SID: s.sid, Upgrades: upgrades, MaxPayload: srv.cfg.MaxPayloadBytes,
		PingInterval: srv.cfg.PingInterval.Milliseconds(), PingTimeout: srv.cfg.PingTimeout.Milliseconds(),
	})
}

func (srv *Server) openPolling(w http.ResponseWriter, r *http.Request) {
	s, err := srv.newSession(r, nil)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, eioErrForbidden, "Forbidden", err)
		return
	}
	writeText(w, "text/plain; charset=UTF-8", srv.handshake(s, true))
}

// httpError writes an Engine.IO error body {"code","message"} and, when
// err is not nil, a "detail" with the cause.
func httpError(w http.ResponseWriter, status, code int, msg string, err error) {
	b := encodeHTTPError(code, msg)
	if err != nil {
		b = append(b[:len(b)-1], `,"detail":`...)
		b = appendJSONString(b, err.Error())
		b = append(b, '}')
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// unknownSession writes the Engine.IO "Session ID unknown" error.
func unknownSession(w http.ResponseWriter) {
	httpError(w, http.StatusBadRequest, eioErrUnknownSID, "Session ID unknown", nil)
}

func badRequest(w http.ResponseWriter, err error) {
	httpError(w, http.StatusBadRequest, eioErrBadRequest, "Bad request", err)
}

func writeText(w http.ResponseWriter, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
