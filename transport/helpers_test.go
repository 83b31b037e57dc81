package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caasd/caasd/internal/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "transport-test-secret"

type event struct {
	name, data string
	c          Conn // the connection it came on
}

// recorder is a Handler that records what its connections receive.
type recorder struct {
	mu     sync.Mutex
	conns  []Conn
	events chan event
	closed chan string
}

func (r *recorder) Open(c Conn) Session {
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	return &recSession{r: r, c: c}
}

func (r *recorder) conn(i int) Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[i]
}

type recSession struct {
	r *recorder
	c Conn
}

func (s *recSession) Event(name string, data []byte, _ uint64) {
	s.r.events <- event{name, string(data), s.c}
}
func (s *recSession) Closed() { s.r.closed <- s.c.ID() }

type nopMetrics struct{}

func (nopMetrics) ConnOpened()   {}
func (nopMetrics) ConnClosed()   {}
func (nopMetrics) SlowConsumer() {}

// startWS serves /ws on a loopback port until the test ends.
func startWS(tb testing.TB, cfg WSConfig) (*WSServer, *recorder, string) {
	tb.Helper()
	return startWSWith(tb, cfg, slog.New(slog.DiscardHandler), nil)
}

// startWSWith is startWS with a logger, and a look at the server before
// it runs.
func startWSWith(tb testing.TB, cfg WSConfig, logger *slog.Logger, before func(*WSServer)) (*WSServer, *recorder, string) {
	tb.Helper()
	rec := &recorder{events: make(chan event, 1024), closed: make(chan string, 1024)}
	if cfg.MaxFrameBytes == 0 {
		cfg.MaxFrameBytes = 64 << 10
	}
	if cfg.HardMaxFrameBytes == 0 {
		cfg.HardMaxFrameBytes = 1 << 20
	}
	if cfg.OutboundQueueLen == 0 {
		cfg.OutboundQueueLen = 256
	}
	cfg.NodeID, cfg.MaxConnections = "t", 10000
	s, err := NewWSServer(cfg, auth.NewVerifier(testSecret), rec, NewRegistry(), logger, nopMetrics{})
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range s.loops {
		if (l.ring != nil) != cfg.WriteRing {
			tb.Fatalf("WriteRing %v, but the loop's ring is %v (io_uring_setup refused?)", cfg.WriteRing, l.ring)
		}
	}
	if before != nil {
		before(s)
	}
	hs := httptest.NewServer(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	tb.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
	})
	return s, rec, hs.Listener.Addr().String()
}

// rawClient is a WebSocket client written against the RFC, so that tests
// can send what a library would not: split, fragmented and bad frames.
type rawClient struct {
	tb   testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(tb testing.TB, addr, query string) *rawClient {
	tb.Helper()
	tok, err := auth.Mint(testSecret, auth.Principal{UserID: "u1", TenantID: "t1"}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	req := "GET /ws?token=" + tok + query + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		tb.Fatalf("upgrade: %s, accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return &rawClient{tb: tb, conn: conn, br: br}
}

func (c *rawClient) write(b []byte) {
	c.tb.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.tb.Fatal(err)
	}
}

// read returns the next server frame's opcode and payload.
func (c *rawClient) read() (byte, []byte) {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	op, p, err := c.readFrame()
	if err != nil {
		c.tb.Fatal(err)
	}
	return op, p
}

// readFrame is read without a deadline of its own and without failing
// the test: for clients read from goroutines other than the test's.
func (c *rawClient) readFrame() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, fmt.Errorf("read frame: %w", err)
	}
	if h[1]&0x80 != 0 || h[0]&0x80 == 0 {
		return 0, nil, fmt.Errorf("server frame masked or not final: %x", h)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(c.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(c.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return 0, nil, fmt.Errorf("read payload: %w", err)
	}
	return h[0] & 0x0F, p, nil
}

// readClose reads frames up to a close frame and returns its code.
func (c *rawClient) readClose() uint16 {
	c.tb.Helper()
	for {
		op, p := c.read()
		if op == opClose {
			if len(p) < 2 {
				return 1005
			}
			return binary.BigEndian.Uint16(p)
		}
	}
}

func waitEvent(tb testing.TB, rec *recorder) event {
	tb.Helper()
	select {
	case e := <-rec.events:
		return e
	case <-time.After(5 * time.Second):
		tb.Fatal("no event")
		return event{}
	}
}

func waitClosed(tb testing.TB, rec *recorder) {
	tb.Helper()
	select {
	case <-rec.closed:
	case <-time.After(5 * time.Second):
		tb.Fatal("connection not released")
	}
}

// forEachWritePath runs test with each of the flusher's ways of writing:
// a write(2) per connection, and a chunk of connections per io_uring call.
func forEachWritePath(t *testing.T, test func(t *testing.T, ring bool)) {
	t.Helper()
	for _, wp := range []struct {
		name string
		ring bool
	}{{"write", false}, {"io_uring", true}} {
		t.Run(wp.name, func(t *testing.T) { test(t, wp.ring) })
	}
}
