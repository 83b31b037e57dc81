package socketio

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"go.uber.org/goleak"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "socketio-test-secret"

func token(t testing.TB, user string) string {
	t.Helper()
	tok, err := auth.Mint(testSecret, auth.Principal{UserID: user, TenantID: "acme"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// event is one event a fake session received.
type event struct {
	name string
	data string
	ack  uint64
}

// fakeHandler records connections and their events. "echo" is answered
// with Reply(ack, echo data); "flood" sends its data (a number) frames.
type fakeHandler struct {
	mu     sync.Mutex
	conns  []transport.Conn
	events []event
	closed map[string]int
}

func (h *fakeHandler) Open(c transport.Conn) transport.Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns = append(h.conns, c)
	return &fakeSession{h: h, c: c}
}

func (h *fakeHandler) snapshot() ([]transport.Conn, []event, map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	closed := make(map[string]int, len(h.closed))
	for k, v := range h.closed {
		closed[k] = v
	}
	return append([]transport.Conn(nil), h.conns...), append([]event(nil), h.events...), closed
}

type fakeSession struct {
	h *fakeHandler
	c transport.Conn
}

func (s *fakeSession) Event(name string, data []byte, ack uint64) {
	s.h.mu.Lock()
	s.h.events = append(s.h.events, event{name, string(data), ack})
	s.h.mu.Unlock()
	switch name {
	case "echo":
		s.c.Reply(ack, transport.NewFrame("echo", data))
	case "flood":
		var n int
		_ = json.Unmarshal(data, &n)
		for i := range n {
			s.c.Send(transport.NewFrame("flood", []byte(strings.Repeat("1", i%3+1))))
		}
	}
}

func (s *fakeSession) Closed() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if s.h.closed == nil {
		s.h.closed = map[string]int{}
	}
	s.h.closed[s.c.ID()]++
}

type fakeMetrics struct{ opened, closed, slow atomic.Int64 }

func (m *fakeMetrics) ConnOpened()   { m.opened.Add(1) }
func (m *fakeMetrics) ConnClosed()   { m.closed.Add(1) }
func (m *fakeMetrics) SlowConsumer() { m.slow.Add(1) }

// rig is a Server behind an httptest server, with Run going.
type rig struct {
	t       *testing.T
	srv     *Server
	http    *httptest.Server
	h       *fakeHandler
	m       *fakeMetrics
	conns   *transport.Registry
	base    string // http://…/socket.io/?EIO=4
	stopRun func()
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{t: t, h: &fakeHandler{}, m: &fakeMetrics{}, conns: transport.NewRegistry()}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r.srv = NewServer(cfg, auth.NewVerifier(testSecret), r.h, r.conns, logger, r.m)
	r.http = httptest.NewServer(r.srv)
	r.base = r.http.URL + "/socket.io/?EIO=4"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.srv.Run(ctx) }()
	r.stopRun = func() { cancel(); <-done }
	t.Cleanup(func() {
		r.srv.Close(transport.CloseGoingAway, "test over")
		r.stopRun()
		r.http.Close()
		r.http.Client().CloseIdleConnections()
	})
	return r
}

func (r *rig) do(method, query, body string) (int, string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, r.base+query, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := r.http.Client().Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, query, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// open does a polling handshake and returns the sid.
func (r *rig) open() string {
	r.t.Helper()
	status, body := r.do("GET", "&transport=polling", "")
	var h struct {
		SID string `json:"sid"`
	}
	if status != 200 || !strings.HasPrefix(body, "0") || json.Unmarshal([]byte(body[1:]), &h) != nil {
		r.t.Fatalf("handshake: %d %s", status, body)
	}
	return h.SID
}

func (r *rig) post(sid, body string) {
	r.t.Helper()
	if status, resp := r.do("POST", "&transport=polling&sid="+sid, body); status != 200 || resp != "ok" {
		r.t.Fatalf("POST %q: %d %s", body, status, resp)
	}
}

func (r *rig) poll(sid string) string {
	r.t.Helper()
	status, body := r.do("GET", "&transport=polling&sid="+sid, "")
	if status != 200 {
		r.t.Fatalf("GET: %d %s", status, body)
	}
	return body
}

// gone checks that the session is closed: a poll gets the close packet
// (if the close was still pending) or "Session ID unknown".
func (r *rig) gone(sid string) {
	r.t.Helper()
	if status, body := r.do("GET", "&transport=polling&sid="+sid, ""); !(status == 200 && body == "1") &&
		!(status == 400 && body == `{"code":1,"message":"Session ID unknown"}`) {
		r.t.Fatalf("session %s still open: %d %q", sid, status, body)
	}
}

// connect opens a polling session and completes the Socket.IO CONNECT.
func (r *rig) connect(user string) string {
	r.t.Helper()
	sid := r.open()
	r.post(sid, `40{"token":"`+token(r.t, user)+`"}`)
	if body := r.poll(sid); !strings.HasPrefix(body, `40{"sid":"`) {
		r.t.Fatalf("CONNECT answered %q", body)
	}
	return sid
}

// wsClient is a raw WebSocket client of the Engine.IO protocol.
type wsClient struct {
	conn *gws.Conn
	in   chan string
	done chan struct{}
}

func (r *rig) dialWS(query string) *wsClient {
	r.t.Helper()
	c := &wsClient{in: make(chan string, 1024), done: make(chan struct{})}
	conn, _, err := gws.NewClient(c, &gws.ClientOption{
		Addr: "ws" + strings.TrimPrefix(r.base, "http") + "&transport=websocket" + query, HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		r.t.Fatalf("dial: %v", err)
	}
	c.conn = conn
	go conn.ReadLoop()
	r.t.Cleanup(func() { _ = conn.NetConn().Close(); <-c.done })
	return c
}

func (c *wsClient) send(t testing.TB, msg string) {
	t.Helper()
	if err := c.conn.WriteString(msg); err != nil {
		t.Fatalf("ws write: %v", err)
	}
}

// next returns the next message; pings are answered and skipped.
func (c *wsClient) next(t testing.TB) string {
	t.Helper()
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				t.Fatal("websocket closed")
			}
			if m == "2" {
				_ = c.conn.WriteString("3")
				continue
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no websocket message within 5s")
		}
	}
}

func (c *wsClient) OnOpen(*gws.Conn)         {}
func (c *wsClient) OnClose(*gws.Conn, error) { close(c.in); close(c.done) }
func (c *wsClient) OnPing(*gws.Conn, []byte) {}
func (c *wsClient) OnPong(*gws.Conn, []byte) {}
func (c *wsClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	c.in <- string(m.Bytes())
}

// eventually waits up to 5 s for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}
