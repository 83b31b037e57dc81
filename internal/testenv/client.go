package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/caasd/caasd/internal/auth"
)

// Token mints a test JWT.
func Token(t testing.TB, user, tenant string, roles ...string) string {
	t.Helper()
	tok, err := auth.Mint(JWTSecret, auth.Principal{UserID: user, TenantID: tenant, Roles: roles}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Event is one server event a client received.
type Event struct {
	Name string          `json:"event"`
	Data json.RawMessage `json:"data"`
}

// Field returns a top-level field of the event's data as a string (numbers
// as their JSON text).
func (e Event) Field(name string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(e.Data, &m) != nil {
		return ""
	}
	raw := m[name]
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// Client is a real WebSocket client (gws) of caasd's native protocol. It
// records every event it receives; Wait takes them in order.
type Client struct {
	t      testing.TB
	Conn   *gws.Conn
	mu     sync.Mutex
	cond   *sync.Cond
	events []Event
	taken  []bool
	closed bool
	err    error
	done   chan struct{}
}

// Dial connects to ws://addr/ws with token (in the query) and extra query.
func Dial(t testing.TB, addr, token, query string) *Client {
	t.Helper()
	c, resp, err := TryDial(t, addr, token, query)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	return c
}

// TryDial is Dial returning the error and handshake response.
func TryDial(t testing.TB, addr, token, query string) (*Client, *http.Response, error) {
	t.Helper()
	c := &Client{t: t, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	u := "ws://" + addr + "/ws?token=" + token
	if query != "" {
		u += "&" + query
	}
	conn, resp, err := gws.NewClient(c, &gws.ClientOption{Addr: u, ReadMaxPayloadSize: 64 << 20, HandshakeTimeout: 5 * time.Second})
	if err != nil {
		return nil, resp, err
	}
	c.Conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { c.Close() })
	return c, resp, nil
}

// Close closes the socket and waits for the read loop.
func (c *Client) Close() {
	_ = c.Conn.WriteClose(1000, nil)
	_ = c.Conn.NetConn().Close()
	<-c.done
}

// Emit sends {"event":name,"data":data}.
func (c *Client) Emit(name string, data any) {
	b, err := json.Marshal(map[string]any{"event": name, "data": data})
	if err != nil {
		c.t.Fatal(err)
	}
	c.Raw(b)
}

// Raw sends a text frame as is. A write to a connection the server closed
// is not an error of the test: tests that cut connections check outcomes.
func (c *Client) Raw(b []byte) {
	if err := c.Conn.WriteMessage(gws.OpcodeText, b); err != nil {
		if closed, _ := c.Closed(); !closed {
			c.t.Logf("write: %v", err)
		}
	}
}

// Burst writes frames as text messages in one TCP write, as a client that
// floods would: the server reads them all at once.
func (c *Client) Burst(frames [][]byte) {
	var b []byte
	for _, f := range frames {
		b = append(b, 0x81)
		switch n := len(f); {
		case n < 126:
			b = append(b, 0x80|byte(n))
		case n <= 0xFFFF:
			b = append(b, 0x80|126, byte(n>>8), byte(n))
		default:
			c.t.Fatalf("burst frame of %d bytes", n)
		}
		b = append(b, 0, 0, 0, 0) // a zero masking key leaves the payload as is
		b = append(b, f...)
	}
	if _, err := c.Conn.NetConn().Write(b); err != nil {
		c.t.Fatalf("burst: %v", err)
	}
}

// Wait returns the first event not taken yet that matches name and pred
// (nil: any), waiting up to d.
func (c *Client) Wait(name string, d time.Duration, pred func(Event) bool) Event {
	c.t.Helper()
	ev, ok := c.TryWait(name, d, pred)
	if !ok {
		c.mu.Lock()
		var names []string
		for i, e := range c.events {
			if !c.taken[i] {
				names = append(names, e.Name+string(e.Data))
			}
		}
		c.mu.Unlock()
		if len(names) > 10 {
			names = names[len(names)-10:]
		}
		c.t.Fatalf("no %q event within %v; untaken (last 10): %v", name, d, names)
	}
	return ev
}

// TryWait is Wait without failing.
func (c *Client) TryWait(name string, d time.Duration, pred func(Event) bool) (Event, bool) {
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for i, e := range c.events {
			if !c.taken[i] && e.Name == name && (pred == nil || pred(e)) {
				c.taken[i] = true
				return e, true
			}
		}
		if time.Now().After(deadline) || c.closed {
			return Event{}, false
		}
		c.cond.Wait()
	}
}

// All returns every event received with name, taken or not.
func (c *Client) All(name string) []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Event
	for _, e := range c.events {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// Position returns the index of the first received event with name
// matching pred among all events, or -1.
func (c *Client) Position(name string, pred func(Event) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.events {
		if e.Name == name && (pred == nil || pred(e)) {
			return i
		}
	}
	return -1
}

// Count returns how many events with name were received.
func (c *Client) Count(name string) int { return len(c.All(name)) }

// Closed reports whether the server closed the connection, and why.
func (c *Client) Closed() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.err
}

// WaitClosed waits up to d for the connection to close.
func (c *Client) WaitClosed(d time.Duration) (error, bool) {
	select {
	case <-c.done:
		return c.err, true
	case <-time.After(d):
		return nil, false
	}
}

// OnOpen is gws's event handler; the client needs nothing at the open.
func (c *Client) OnOpen(*gws.Conn) {}

// OnClose records the close and its error, and wakes every waiter.
func (c *Client) OnClose(_ *gws.Conn, err error) {
	c.mu.Lock()
	c.closed, c.err = true, err
	c.cond.Broadcast()
	c.mu.Unlock()
	close(c.done)
}

// OnPing answers a ping with its pong.
func (c *Client) OnPing(s *gws.Conn, p []byte) { _ = s.WritePong(p) }

// OnPong is gws's event handler; the client sends no pings.
func (c *Client) OnPong(*gws.Conn, []byte) {}

// OnMessage records each event of a frame (an object, or an array of them
// from a batch=1 connection) and wakes every waiter.
func (c *Client) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	b := bytes.TrimSpace(m.Bytes())
	var evs []Event
	if len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &evs); err != nil {
			c.t.Errorf("bad batch frame %q: %v", b, err)
			return
		}
	} else {
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			c.t.Errorf("bad frame %q: %v", b, err)
			return
		}
		evs = []Event{e}
	}
	c.mu.Lock()
	for _, e := range evs {
		c.events = append(c.events, e)
		c.taken = append(c.taken, false)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

// HTTP does an API request with a bearer token and returns status and body.
func HTTP(t testing.TB, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			r = strings.NewReader(s)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			r = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// MustHTTP is HTTP failing unless the status is want.
func MustHTTP(t testing.TB, want int, method, url, token string, body any) []byte {
	t.Helper()
	status, b := HTTP(t, method, url, token, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, status, want, b)
	}
	return b
}

// Fmt is fmt.Sprintf, for building ids in tests.
func Fmt(format string, a ...any) string { return fmt.Sprintf(format, a...) }
