package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
	// WriteRing sends each chunk of a flush pass with one io_uring system
	// call instead of one write(2) per connection; where io_uring is not
	// available (an old kernel, a seccomp filter) the loops write as
	// without it.
	WriteRing bool
}

// Metrics is what the transport reports.
type Metrics interface {
	ConnOpened()
	ConnClosed()
	SlowConsumer()
}

// WSServer serves GET /ws: it authenticates the upgrade, takes the socket
// into one of its event loops, runs the native JSON codec, and hands
// events to the Handler. A connection costs no goroutine and no buffer
// while idle.
type WSServer struct {
	cfg      WSConfig
	verifier *auth.Verifier
	handler  Handler
	logger   *slog.Logger
	metrics  Metrics
	conns    *Registry
	loops    []*wsLoop
	nextID   atomic.Uint64

	stopMu  sync.RWMutex
	stopped bool
}

// NewWSServer returns the /ws handler with one event loop per CPU the
// runtime may use.
func NewWSServer(cfg WSConfig, verifier *auth.Verifier, handler Handler, conns *Registry, logger *slog.Logger, metrics Metrics) (*WSServer, error) {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 25 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	s := &WSServer{cfg: cfg, verifier: verifier, handler: handler, logger: logger, metrics: metrics, conns: conns}
	for range runtime.GOMAXPROCS(0) {
		l, err := newLoop(logger, cfg.WriteRing)
		if err != nil {
			s.closeLoops()
			return nil, fmt.Errorf("websocket event loop: %w", err)
		}
		s.loops = append(s.loops, l)
	}
	return s, nil
}

func (s *WSServer) closeLoops() {
	for _, l := range s.loops {
		l.p.close()
		l.closeRing()
	}
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
	key, err := checkUpgrade(r)
	if err != nil {
		w.Header().Set("Sec-WebSocket-Version", "13")
		WriteHTTPError(w, http.StatusBadRequest, wire.CodeInvalidMessage, err.Error())
		return
	}
	conn, buffered, err := hijack(w, key)
	if err != nil {
		s.logger.Debug("ws upgrade failed", "err", err)
		return
	}
	fd, err := takeFD(conn)
	if err != nil {
		s.logger.Warn("ws upgrade failed", "err", err)
		_ = conn.Close()
		return
	}
	n := s.nextID.Add(1)
	c := &wsConn{
		id:        s.cfg.NodeID + "-" + strconv.FormatUint(n, 36),
		principal: p,
		server:    s,
		loop:      s.loops[n%uint64(len(s.loops))],
		fd:        fd,
		batch:     r.URL.Query().Get("batch") == "1",
	}
	c.lastRead.Store(time.Now().UnixNano())
	s.stopMu.RLock()
	defer s.stopMu.RUnlock()
	if s.stopped {
		sysClose(fd)
		return
	}
	s.conns.Add(c)
	s.metrics.ConnOpened()
	c.session = s.handler.Open(c)
	if len(buffered) > 0 { // frames the client sent right behind its request
		c.onData(buffered)
	}
	if err := c.loop.p.add(c); err != nil {
		s.logger.Warn("ws register failed", "conn", c.id, "err", err)
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		sysClose(fd)
		s.conns.Remove(c)
		s.metrics.ConnClosed()
		c.session.Closed()
	}
}

// sweepInterval is how often connections are checked for timeouts.
const sweepInterval = time.Second

// Run runs the event loops and pings every connection each PingInterval
// until ctx ends; then it writes what waits (close frames of a drain),
// closes every socket and returns when every loop goroutine has.
func (s *WSServer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range s.loops {
		wg.Add(2)
		go func() { defer wg.Done(); l.runPoller() }()
		go func() { defer wg.Done(); l.runFlusher(ctx) }()
	}
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	nextPing := time.Now().Add(s.cfg.PingInterval)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case now := <-t.C:
			ping := !now.Before(nextPing)
			if ping {
				nextPing = now.Add(s.cfg.PingInterval)
			}
			s.each(func(c *wsConn) {
				c.check(now, &s.cfg)
				if ping {
					c.queueControl(opPing, nil)
				}
			})
		}
	}
	s.stopMu.Lock()
	s.stopped = true
	s.stopMu.Unlock()
	for _, l := range s.loops {
		l.stop()
	}
	wg.Wait()
	s.each(func(c *wsConn) { c.release() })
}

func (s *WSServer) each(fn func(*wsConn)) {
	for _, l := range s.loops {
		l.p.each(fn)
	}
}

// errorFrame builds an "error" event.
func errorFrame(code wire.Code, msg string) *Frame {
	return NewFrame(wire.EvError, wire.Marshal(wire.Error{Code: code, Message: msg}))
}
