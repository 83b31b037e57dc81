package socketio

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caasd/caasd/transport"
)

func TestPollingHandshake(t *testing.T) {
	r := newRig(t, Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxPayloadBytes: 5000})
	status, body := r.do("GET", "&transport=polling", "")
	var h map[string]any
	if status != 200 || body[0] != '0' || json.Unmarshal([]byte(body[1:]), &h) != nil {
		t.Fatalf("%d %s", status, body)
	}
	if h["pingInterval"] != 300.0 || h["pingTimeout"] != 200.0 || h["maxPayload"] != 5000.0 || len(h["sid"].(string)) < 20 {
		t.Fatalf("handshake %v", h)
	}
	if up := h["upgrades"].([]any); len(up) != 1 || up[0] != "websocket" {
		t.Fatalf("upgrades %v", up)
	}
}

func TestBadRequestsGetEngineIOErrors(t *testing.T) {
	r := newRig(t, Config{MaxPayloadBytes: 1000})
	for _, tc := range []struct {
		method, query, body string
		status              int
		prefix              string
	}{
		{"GET", "&transport=polling&sid=nope", "", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"POST", "&transport=polling&sid=nope", "4x", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"GET", "&transport=websocket&sid=nope", "", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"GET", "&transport=pigeon", "", 400, `{"code":0,"message":"Transport unknown"`},
		{"GET", "", "", 400, `{"code":0,"message":"Transport unknown"`},
		{"POST", "&transport=polling", "4x", 400, `{"code":2,"message":"Bad handshake method"`},
		{"GET", "&transport=polling&j=1", "", 400, `{"code":3,"message":"Bad request","detail":"socketio: bad request: JSONP`},
	} {
		status, body := r.do(tc.method, tc.query, tc.body)
		if status != tc.status || !strings.HasPrefix(body, tc.prefix) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.query, status, body, tc.status, tc.prefix)
		}
	}
	for _, v := range []string{"3", "abc", ""} {
		req := strings.Replace(r.base, "EIO=4", "EIO="+v, 1)
		resp, err := r.http.Client().Get(req + "&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("EIO=%s: %d", v, resp.StatusCode)
		}
	}

	// Each of these closes its own session, and only it.
	healthy := r.connect("alice")
	for _, tc := range []struct {
		body   string
		status int
		prefix string
	}{
		{"abc", 400, `{"code":3,"message":"Bad request","detail":"packet 1: socketio: malformed packet: unknown engine.io packet type 'a'`},
		{"4x\x1e", 400, `{"code":3,"message":"Bad request","detail":"packet 2: socketio: malformed packet: empty engine.io packet`},
		{"0{}", 400, `{"code":3,"message":"Bad request","detail":"socketio: malformed packet: unexpected engine.io packet type '0'`},
		{"4" + strings.Repeat("x", 1000), 413, `{"code":3,"message":"Payload too large","detail":"socketio: payload too large: 1001 bytes`},
	} {
		sid := r.open()
		status, body := r.do("POST", "&transport=polling&sid="+sid, tc.body)
		if status != tc.status || !strings.HasPrefix(body, tc.prefix) {
			t.Errorf("POST %.20q: %d %s, want %d %s", tc.body, status, body, tc.status, tc.prefix)
		}
		if status, _ := r.do("GET", "&transport=polling&sid="+sid, ""); status != 400 {
			t.Errorf("POST %.20q: session still open", tc.body)
		}
	}
	r.post(healthy, `42["echo","still here"]`)
	if body := r.poll(healthy); body != `42["echo","still here"]` {
		t.Fatalf("healthy session got %q", body)
	}
}

func TestConnectEventsAndAcksOverPolling(t *testing.T) {
	r := newRig(t, Config{})
	sid := r.connect("alice")
	if r.conns.Len() != 1 || r.m.opened.Load() != 1 {
		t.Fatalf("registry %d, opened %d", r.conns.Len(), r.m.opened.Load())
	}
	r.post(sid, "42[\"echo\",{\"a\":1}]\x1e421[\"echo\",2]\x1e42[\"noarg\"]")
	if body := r.poll(sid); body != "42[\"echo\",{\"a\":1}]\x1e42[\"echo\",2]\x1e431[2]" {
		t.Fatalf("poll %q", body)
	}
	conns, events, _ := r.h.snapshot()
	want := []event{{"echo", `{"a":1}`, 0}, {"echo", "2", 2}, {"noarg", "", 0}}
	if len(events) != 3 || events[0] != want[0] || events[1] != want[1] || events[2] != want[2] {
		t.Fatalf("events %+v, want %+v", events, want)
	}
	if p := conns[0].Principal(); p.UserID != "alice" || p.TenantID != "acme" {
		t.Fatalf("principal %+v", p)
	}
	// Binary is refused with an error event; the attachments that follow a
	// binary event are dropped silently.
	r.post(sid, "452-5[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebAQID\x1ebAQID")
	body := r.poll(sid)
	if !strings.HasPrefix(body, `42["error",{"code":"invalid_message","message":"socketio: binary packets are not supported`) || strings.Count(body, "\x1e") != 1 ||
		!strings.Contains(body, "\x1e435[{\"code\":\"invalid_message\"") {
		t.Fatalf("binary answered %q", body)
	}
	// Malformed and oversized Socket.IO packets get an error event.
	r.post(sid, `42["echo"`)
	if body := r.poll(sid); !strings.HasPrefix(body, `42["error",{"code":"invalid_message","message":"socketio: malformed packet: payload is not valid JSON"`) {
		t.Fatalf("malformed answered %q", body)
	}
	r.post(sid, `42["echo","`+strings.Repeat("x", 70*1024)+`"]`)
	if body := r.poll(sid); !strings.HasPrefix(body, `42["error",{"code":"too_large"`) {
		t.Fatalf("too large answered %.100q", body)
	}
	// DISCONNECT ends the session and the connection.
	r.post(sid, "41")
	eventually(t, "close", func() bool { _, _, c := r.h.snapshot(); return c[conns[0].ID()] == 1 })
	if r.conns.Len() != 0 || r.m.closed.Load() != 1 || r.srv.Len() != 0 {
		t.Fatalf("registry %d, closed %d, sessions %d", r.conns.Len(), r.m.closed.Load(), r.srv.Len())
	}
}

func TestConnectErrors(t *testing.T) {
	r := newRig(t, Config{})
	sid := r.open()
	r.post(sid, `40{"token":"bad"}`)
	if body := r.poll(sid); !strings.HasPrefix(body, `44{"message":"auth: invalid token`) || !strings.Contains(body, `"data":{"code":"unauthorized"`) {
		t.Fatalf("bad token answered %q", body)
	}
	r.post(sid, `40`)
	if body := r.poll(sid); !strings.HasPrefix(body, `44{"message":"auth: no token","data":{"code":"unauthorized"`) {
		t.Fatalf("no token answered %q", body)
	}
	r.post(sid, `40{"token":5}`)
	if body := r.poll(sid); !strings.Contains(body, `"code":"invalid_message"`) {
		t.Fatalf("numeric token answered %q", body)
	}
	r.post(sid, `40/admin,{"token":"`+token(t, "alice")+`"}`)
	if body := r.poll(sid); !strings.HasPrefix(body, `44/admin,{"message":"Invalid namespace \"/admin\"`) || !strings.Contains(body, `"code":"forbidden"`) {
		t.Fatalf("namespace answered %q", body)
	}
	if len(r.h.conns) != 0 || r.conns.Len() != 0 {
		t.Fatal("a refused CONNECT opened a connection")
	}
	// The session is still usable: the right token connects.
	r.post(sid, `40{"token":"`+token(t, "alice")+`"}`)
	if body := r.poll(sid); !strings.HasPrefix(body, `40{"sid":"`) {
		t.Fatalf("CONNECT answered %q", body)
	}
	// The token may also come with the handshake request.
	status, body := r.do("GET", "&transport=polling&token="+token(t, "bob"), "")
	var h struct{ SID string }
	_ = json.Unmarshal([]byte(body[1:]), &h)
	r.post(h.SID, "40")
	if body := r.poll(h.SID); status != 200 || !strings.HasPrefix(body, `40{"sid":"`) {
		t.Fatalf("CONNECT with the handshake's token answered %q", body)
	}
	// An event before CONNECT closes the session.
	sid = r.open()
	r.post(sid, `42["echo",1]`)
	r.gone(sid)
}

func TestWebSocketDirect(t *testing.T) {
	r := newRig(t, Config{})
	c := r.dialWS("")
	var h struct {
		SID      string   `json:"sid"`
		Upgrades []string `json:"upgrades"`
	}
	if m := c.next(t); m[0] != '0' || json.Unmarshal([]byte(m[1:]), &h) != nil || h.SID == "" || len(h.Upgrades) != 0 {
		t.Fatalf("open %q", m)
	}
	c.send(t, `40{"token":"`+token(t, "alice")+`"}`)
	if m := c.next(t); !strings.HasPrefix(m, `40{"sid":"`) {
		t.Fatalf("CONNECT answered %q", m)
	}
	c.send(t, `427["echo",[1,2]]`)
	if m, a := c.next(t), c.next(t); m != `42["echo",[1,2]]` || a != `437[[1,2]]` {
		t.Fatalf("echo answered %q %q", m, a)
	}
	if err := c.conn.WriteMessage(2, []byte{1, 2, 3}); err != nil { // binary frame
		t.Fatal(err)
	}
	if m := c.next(t); !strings.HasPrefix(m, `42["error",{"code":"invalid_message"`) {
		t.Fatalf("binary answered %q", m)
	}
	// Polling requests for a WebSocket session are refused.
	if status, _ := r.do("GET", "&transport=polling&sid="+h.SID, ""); status != 400 {
		t.Fatalf("poll of a websocket session: %d", status)
	}
	c.send(t, `41`)
	eventually(t, "closed", func() bool { return r.srv.Len() == 0 && r.conns.Len() == 0 })
	<-c.done
}

func TestUpgradeMovesWaitingPacketsInOrder(t *testing.T) {
	r := newRig(t, Config{})
	sid := r.connect("alice")
	conns, _, _ := r.h.snapshot()
	conn := conns[0]

	pending := make(chan string, 1)
	go func() { _, body := r.do("GET", "&transport=polling&sid="+sid, ""); pending <- body }()
	time.Sleep(50 * time.Millisecond)
	c := r.dialWS("&sid=" + sid)
	c.send(t, "2probe")
	if m := c.next(t); m != "3probe" {
		t.Fatalf("probe answered %q", m)
	}
	if body := <-pending; body != "6" {
		t.Fatalf("the pending poll got %q, want a noop", body)
	}
	// Until "5", packets wait for polling; then they move to the WebSocket.
	for i := range 3 {
		conn.Send(transport.NewFrame("n", []byte{byte('0' + i)}))
	}
	c.send(t, "5")
	for i := range 3 {
		if m := c.next(t); m != `42["n",`+string(rune('0'+i))+`]` {
			t.Fatalf("message %d: %q", i, m)
		}
	}
	c.send(t, `42["echo","ws"]`)
	if m := c.next(t); m != `42["echo","ws"]` {
		t.Fatalf("after the upgrade: %q", m)
	}
	if status, _ := r.do("GET", "&transport=polling&sid="+sid, ""); status != 400 {
		t.Fatalf("poll after the upgrade: %d", status)
	}
	if status, _ := r.do("GET", "&transport=websocket&sid="+sid, ""); status != 400 {
		t.Fatalf("second upgrade: %d", status)
	}
}

func TestHeartbeatClosesSilentSessions(t *testing.T) {
	r := newRig(t, Config{PingInterval: 40 * time.Millisecond, PingTimeout: 60 * time.Millisecond})
	sid := r.connect("alice")
	for range 3 {
		if body := r.poll(sid); body != "2" {
			t.Fatalf("expected a ping, got %q", body)
		}
		r.post(sid, "3")
	}
	conns, _, _ := r.h.snapshot()
	eventually(t, "ping timeout", func() bool { return r.srv.Len() == 0 })
	eventually(t, "closed", func() bool { _, _, c := r.h.snapshot(); return c[conns[0].ID()] == 1 })
	if r.conns.Len() != 0 || r.m.closed.Load() != 1 {
		t.Fatalf("registry %d, closed %d", r.conns.Len(), r.m.closed.Load())
	}
	// A session that never connects is closed after ConnectTimeout.
	r2 := newRig(t, Config{ConnectTimeout: 50 * time.Millisecond})
	r2.open()
	eventually(t, "connect timeout", func() bool { return r2.srv.Len() == 0 })
}

func TestSlowConsumerIsClosed(t *testing.T) {
	r := newRig(t, Config{OutboundQueueLen: 8})
	sid := r.connect("alice")
	r.post(sid, `42["flood",20]`)
	r.gone(sid)
	if r.m.slow.Load() != 1 || r.conns.Len() != 0 {
		t.Fatalf("slow %d, registry %d", r.m.slow.Load(), r.conns.Len())
	}
	// Over WebSocket too (transport.Outbox).
	c := r.dialWS("")
	c.next(t)
	c.send(t, `40{"token":"`+token(t, "bob")+`"}`)
	c.next(t)
	c.send(t, `42["flood",100000]`)
	eventually(t, "slow websocket closed", func() bool { return r.m.slow.Load() == 2 })
}

func TestOverlappingPollsCloseTheSession(t *testing.T) {
	r := newRig(t, Config{})
	sid := r.connect("alice")
	first := make(chan string, 1)
	go func() { _, body := r.do("GET", "&transport=polling&sid="+sid, ""); first <- body }()
	time.Sleep(50 * time.Millisecond)
	status, body := r.do("GET", "&transport=polling&sid="+sid, "")
	if status != 400 || !strings.Contains(body, "overlapping") {
		t.Fatalf("second poll: %d %s", status, body)
	}
	if body := <-first; body != "1" {
		t.Fatalf("first poll got %q", body)
	}
	if status, _ := r.do("GET", "&transport=polling&sid="+sid, ""); status != 400 {
		t.Fatalf("session survived: %d", status)
	}
}

func TestCloseEndsEverySession(t *testing.T) {
	r := newRig(t, Config{})
	polled := r.connect("alice")
	r.open() // not connected
	c := r.dialWS("")
	c.next(t)
	c.send(t, `40{"token":"`+token(t, "bob")+`"}`)
	c.next(t)
	probing := r.connect("carol")
	p := r.dialWS("&sid=" + probing)
	p.send(t, "2probe")
	p.next(t)

	var wg sync.WaitGroup
	wg.Add(1)
	var pollBody string
	go func() { defer wg.Done(); _, pollBody = r.do("GET", "&transport=polling&sid="+polled, "") }()
	time.Sleep(50 * time.Millisecond)
	r.srv.Close(transport.CloseServiceRestart, "restart")
	wg.Wait()
	if pollBody != "1" {
		t.Fatalf("pending poll got %q", pollBody)
	}
	<-c.done
	<-p.done
	if r.srv.Len() != 0 || r.conns.Len() != 0 || r.m.closed.Load() != 3 {
		t.Fatalf("sessions %d, registry %d, closed %d", r.srv.Len(), r.conns.Len(), r.m.closed.Load())
	}
	_, _, closed := r.h.snapshot()
	for id, n := range closed {
		if n != 1 {
			t.Fatalf("%s closed %d times", id, n)
		}
	}
	if len(closed) != 3 {
		t.Fatalf("%d sessions told Closed, want 3", len(closed))
	}
	if status, body := r.do("GET", "&transport=polling", ""); status != 503 || !strings.Contains(body, "server closed") {
		t.Fatalf("handshake after Close: %d %s", status, body)
	}
	r.stopRun() // Run returns once closed
	r.stopRun = func() {}
}

func TestHeartbeatOverWebSocket(t *testing.T) {
	r := newRig(t, Config{PingInterval: 30 * time.Millisecond, PingTimeout: 60 * time.Millisecond})
	c := r.dialWS("")
	c.next(t)
	c.send(t, `40{"token":"`+token(t, "alice")+`"}`)
	c.next(t)
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		c.send(t, `42["echo",1]`) // next answers the pings in between
		if m := c.next(t); m != `42["echo",1]` {
			t.Fatalf("echo answered %q", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.srv.Len() != 1 {
		t.Fatal("a client answering pings was dropped")
	}
	select { // a client that stops answering is closed
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("silent websocket client not closed")
	}
	eventually(t, "session gone", func() bool { return r.srv.Len() == 0 && r.conns.Len() == 0 })
}
