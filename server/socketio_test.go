package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/testenv"
)

// sioClientDir holds the Node scripts driving the real socket.io-client.
const sioClientDir = "../transport/socketio/testdata/client"

// sioNode returns the node binary, failing the test when node or the npm
// packages are missing.
func sioNode(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sioClientDir, "node_modules", "socket.io-client", "package.json")); err != nil {
		t.Fatalf("socket.io-client is not installed: run: npm ci --prefix transport/socketio/testdata/client (%v)", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (Node.js 20 or later is needed): %v", err)
	}
	return node
}

// sioLine is one line a Node client printed (see client.js).
type sioLine struct {
	T         string          `json:"t"`
	Name      string          `json:"name"`
	Data      json.RawMessage `json:"data"`
	ID        int             `json:"id"`
	Message   string          `json:"message"`
	Reason    string          `json:"reason"`
	Transport string          `json:"transport"`
}

func (l sioLine) event() testenv.Event { return testenv.Event{Name: l.Name, Data: l.Data} }

// sioClient is a Node process running client.js: a real socket.io-client.
type sioClient struct {
	t      testing.TB
	stdin  io.WriteCloser
	mu     sync.Mutex
	cond   *sync.Cond
	lines  []sioLine
	taken  []bool
	exited bool
	stderr bytes.Buffer
	done   chan struct{}
	nextID int
}

// startSIO runs client.js against base (http://host:port) with token ("":
// no auth) and transports ("": the client's default).
func startSIO(t testing.TB, base, token, transports string) *sioClient {
	t.Helper()
	node := sioNode(t)
	cmd := exec.Command(node, "client.js")
	cmd.Dir = sioClientDir
	cmd.Env = append(os.Environ(), "SIO_URL="+base, "SIO_TRANSPORTS="+transports, "SIO_TIMEOUT_MS=120000")
	if token != "" {
		cmd.Env = append(cmd.Env, "SIO_TOKEN="+token)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &sioClient{t: t, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	cmd.Stderr = &lockedWriter{mu: &c.mu, w: &c.stderr}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("node client.js: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var l sioLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l = sioLine{T: "garbage", Message: sc.Text()}
			}
			c.mu.Lock()
			c.lines = append(c.lines, l)
			c.taken = append(c.taken, false)
			c.cond.Broadcast()
			c.mu.Unlock()
		}
		_ = cmd.Wait()
		c.mu.Lock()
		c.exited = true
		c.cond.Broadcast()
		c.mu.Unlock()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// sioConnect starts a client, waits for its connect and joins conv.
func sioConnect(t testing.TB, base, token, transports, conv string) *sioClient {
	t.Helper()
	c := startSIO(t, base, token, transports)
	c.Wait("connect", "", 15*time.Second, nil)
	c.Emit("joinRoom", map[string]any{"conversation_id": conv})
	c.Wait("event", "room:joined", 15*time.Second, nil)
	return c
}

// Emit emits an event without a callback.
func (c *sioClient) Emit(name string, data any) { c.send(map[string]any{"emit": name, "data": data}) }

// EmitAck emits an event with a callback; the ack line carries the id.
func (c *sioClient) EmitAck(name string, data any) int {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	c.send(map[string]any{"emit": name, "data": data, "ack": id})
	return id
}

func (c *sioClient) send(cmd any) {
	b, err := json.Marshal(cmd)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Errorf("write to node: %v", err)
	}
}

// Wait takes the first line not taken yet of kind t (and event name, if
// not empty) matching pred, waiting up to d.
func (c *sioClient) Wait(t, name string, d time.Duration, pred func(sioLine) bool) sioLine {
	c.t.Helper()
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for i, l := range c.lines {
			if !c.taken[i] && l.T == t && (name == "" || l.Name == name) && (pred == nil || pred(l)) {
				c.taken[i] = true
				return l
			}
		}
		if time.Now().After(deadline) || c.exited {
			last := c.lines[max(0, len(c.lines)-8):]
			c.t.Fatalf("no %s %s within %v (exited %v); last lines %+v; stderr %s", t, name, d, c.exited, last, c.stderr.String())
		}
		c.cond.Wait()
	}
}

// Events returns every event named name received so far.
func (c *sioClient) Events(name string) []sioLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sioLine
	for _, l := range c.lines {
		if l.T == "event" && l.Name == name {
			out = append(out, l)
		}
	}
	return out
}

// Index returns the position of the first line of kind t, or -1.
func (c *sioClient) Index(t string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, l := range c.lines {
		if l.T == t {
			return i
		}
	}
	return -1
}

// waitCount waits until count() reaches n.
func waitCount(t testing.TB, what string, n int, d time.Duration, count func() int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d within %v", what, count(), n, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seqIDs returns the message ids of message:new events, checking that
// their seqs strictly increase and that no id comes twice.
func seqIDs(t testing.TB, who string, evs []testenv.Event) []string {
	t.Helper()
	ids := make([]string, 0, len(evs))
	seen := map[string]bool{}
	last := int64(0)
	for _, e := range evs {
		var seq int64
		fmt.Sscan(e.Field("seq"), &seq)
		if seq <= last {
			t.Fatalf("%s: seq %d after %d", who, seq, last)
		}
		last = seq
		id := e.Field("message_id")
		if seen[id] {
			t.Fatalf("%s: %s twice", who, id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids
}

func sioEvents(ls []sioLine) []testenv.Event {
	out := make([]testenv.Event, len(ls))
	for i, l := range ls {
		out[i] = l.event()
	}
	return out
}

// (a) The front-end snippet, as written, against caasd.
func TestSocketIOSnippet(t *testing.T) {
	nodeBin := sioNode(t)
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-001", "alice")

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "snippet.js")
	cmd.Dir = sioClientDir
	cmd.Env = append(os.Environ(), "SIO_URL=http://"+s.Addr(), "SIO_TOKEN="+testenv.Token(t, "alice", "acme"),
		"SIO_CONV=conv-001", "SIO_MSG=test-msg-001")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("snippet.js: %v\n%s", err, out)
	}
	for _, want := range []string{"Joined room:", "conversation_id: 'conv-001'", "Message persisted:", "message_id: 'test-msg-001'", "seq: 1"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("snippet output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "Authorization failed") {
		t.Fatalf("snippet got room:error:\n%s", out)
	}
	if n := mongoCount(t, env, bson.D{{Key: "tenant_id", Value: "acme"}, {Key: "message_id", Value: "test-msg-001"}}); n != 1 {
		t.Fatalf("test-msg-001 stored %d times, want 1", n)
	}
}

// (b) A /ws member and a Socket.IO member see each other's messages in the
// same seq order.
func TestSocketIOAndNativeClientsShareOneOrder(t *testing.T) {
	sioNode(t)
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"RATE_LIMIT_PER_MINUTE": "10000", "RATE_LIMIT_PER_HOUR": "100000"})
	conversation(t, s, "acme", "conv-mix", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-mix")
	bob := sioConnect(t, "http://"+s.Addr(), testenv.Token(t, "bob", "acme"), "", "conv-mix")

	const each = 50
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range each {
			alice.Emit("sendMessage", text(testenv.Fmt("a-%d", i), "conv-mix", testenv.Fmt("from alice %d", i)))
		}
	}()
	go func() {
		defer wg.Done()
		for i := range each {
			bob.Emit("sendMessage", text(testenv.Fmt("b-%d", i), "conv-mix", testenv.Fmt("from bob %d", i)))
		}
	}()
	wg.Wait()
	waitCount(t, "alice's message:new", 2*each, 30*time.Second, func() int { return alice.Count("message:new") })
	waitCount(t, "bob's message:new", 2*each, 30*time.Second, func() int { return len(bob.Events("message:new")) })
	a := seqIDs(t, "alice (/ws)", alice.All("message:new"))
	b := seqIDs(t, "bob (socket.io)", sioEvents(bob.Events("message:new")))
	if len(a) != 2*each || len(b) != 2*each {
		t.Fatalf("alice got %d, bob got %d, want %d each", len(a), len(b), 2*each)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("position %d: alice sees %s, bob sees %s", i, a[i], b[i])
		}
	}
	if n := len(bob.Events("message:accepted")); n != each {
		t.Fatalf("bob got %d message:accepted, want %d", n, each)
	}
}

// (c) A client limited to long-polling works end to end.
func TestSocketIOPollingOnly(t *testing.T) {
	sioNode(t)
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-poll", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-poll")
	bob := startSIO(t, "http://"+s.Addr(), testenv.Token(t, "bob", "acme"), "polling")
	if c := bob.Wait("connect", "", 15*time.Second, nil); c.Transport != "polling" {
		t.Fatalf("connected over %q, want polling", c.Transport)
	}
	bob.Emit("joinRoom", map[string]any{"conversation_id": "conv-poll"})
	bob.Wait("event", "room:joined", 10*time.Second, nil)

	bob.Emit("sendMessage", text("p-1", "conv-poll", "over polling"))
	byLine := func(id string) func(sioLine) bool {
		return func(l sioLine) bool { return l.event().Field("message_id") == id }
	}
	if acc := bob.Wait("event", "message:accepted", 10*time.Second, byLine("p-1")); acc.event().Field("seq") != "1" {
		t.Fatalf("accepted %s, want seq 1", acc.Data)
	}
	bob.Wait("event", "message:persisted", 15*time.Second, byLine("p-1"))
	if ev := alice.Wait("message:new", 10*time.Second, byID("p-1")); ev.Field("sender_id") != "bob" {
		t.Fatalf("alice got %s", ev.Data)
	}
	alice.Emit("sendMessage", text("w-1", "conv-poll", "to a polling client"))
	if ev := bob.Wait("event", "message:new", 10*time.Second, byLine("w-1")); ev.event().Field("sender_id") != "alice" || ev.event().Field("seq") != "2" {
		t.Fatalf("bob got %s", ev.Data)
	}
	if bob.Index("upgrade") >= 0 {
		t.Fatal("a polling-only client upgraded")
	}
}

// A client limited to WebSocket (no polling, no upgrade) works too.
func TestSocketIOWebSocketOnly(t *testing.T) {
	sioNode(t)
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-ws", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-ws")
	bob := startSIO(t, "http://"+s.Addr(), testenv.Token(t, "bob", "acme"), "websocket")
	if c := bob.Wait("connect", "", 15*time.Second, nil); c.Transport != "websocket" {
		t.Fatalf("connected over %q, want websocket", c.Transport)
	}
	bob.Emit("joinRoom", map[string]any{"conversation_id": "conv-ws"})
	bob.Wait("event", "room:joined", 10*time.Second, nil)
	bob.Emit("sendMessage", text("ws-1", "conv-ws", "over websocket"))
	bob.Wait("event", "message:persisted", 15*time.Second, nil)
	alice.Wait("message:new", 10*time.Second, byID("ws-1"))
	alice.Emit("sendMessage", text("ws-2", "conv-ws", "back"))
	bob.Wait("event", "message:new", 10*time.Second, func(l sioLine) bool { return l.event().Field("message_id") == "ws-2" })
}

// gatedProxy forwards to addr but holds WebSocket requests until release
// is closed, so that the upgrade happens when the test wants it.
func gatedProxy(t testing.TB, addr string, release <-chan struct{}) string {
	t.Helper()
	tr := &http.Transport{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
	rp.Transport = tr
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("transport") == "websocket" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return srv.URL
}

// (d) The upgrade from polling to WebSocket in the middle of a busy
// conversation loses nothing and duplicates nothing.
func TestSocketIOUpgradeMidConversationLosesNothing(t *testing.T) {
	sioNode(t)
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"RATE_LIMIT_PER_MINUTE": "10000", "RATE_LIMIT_PER_HOUR": "100000"})
	conversation(t, s, "acme", "conv-up", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-up")
	release := make(chan struct{})
	bob := startSIO(t, gatedProxy(t, s.Addr(), release), testenv.Token(t, "bob", "acme"), "")
	if c := bob.Wait("connect", "", 15*time.Second, nil); c.Transport != "polling" {
		t.Fatalf("connected over %q, want polling first", c.Transport)
	}
	bob.Emit("joinRoom", map[string]any{"conversation_id": "conv-up"})
	bob.Wait("event", "room:joined", 10*time.Second, nil)

	stop := make(chan struct{})
	sent := make(chan int, 2)
	for _, who := range []string{"alice", "bob"} {
		go func() {
			n := 0
			defer func() { sent <- n }()
			for ; n < 500; n++ {
				select {
				case <-stop:
					return
				case <-time.After(4 * time.Millisecond):
				}
				m := text(testenv.Fmt("%s-%d", who, n), "conv-up", testenv.Fmt("%s says %d", who, n))
				if who == "alice" {
					alice.Emit("sendMessage", m)
				} else {
					bob.Emit("sendMessage", m)
				}
			}
		}()
	}
	bobNew := func() int { return len(bob.Events("message:new")) }
	waitCount(t, "messages before the upgrade", 40, 20*time.Second, bobNew)
	close(release)
	bob.Wait("upgrade", "", 15*time.Second, nil)
	atUpgrade := bobNew()
	waitCount(t, "messages after the upgrade", atUpgrade+40, 20*time.Second, bobNew)
	close(stop)
	total := <-sent + <-sent

	waitCount(t, "bob's message:new", total, 30*time.Second, bobNew)
	waitCount(t, "alice's message:new", total, 30*time.Second, func() int { return alice.Count("message:new") })
	time.Sleep(200 * time.Millisecond)
	b := seqIDs(t, "bob", sioEvents(bob.Events("message:new")))
	a := seqIDs(t, "alice", alice.All("message:new"))
	if len(b) != total || len(a) != total {
		t.Fatalf("sent %d; bob got %d, alice got %d", total, len(b), len(a))
	}
	if evs := bob.Events("message:new"); evs[0].event().Field("seq") != "1" || evs[total-1].event().Field("seq") != fmt.Sprint(total) {
		t.Fatalf("bob's seqs run from %s to %s, want 1 to %d", evs[0].event().Field("seq"), evs[total-1].event().Field("seq"), total)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("position %d: alice sees %s, bob sees %s", i, a[i], b[i])
		}
	}
	if first, up := bob.Index("event"), bob.Index("upgrade"); up < first || atUpgrade == 0 || atUpgrade == total {
		t.Fatalf("upgrade at line %d, %d of %d messages before it: it was not mid-conversation", up, atUpgrade, total)
	}
	if bob.Index("disconnect") >= 0 {
		t.Fatal("bob was disconnected")
	}
	t.Logf("%d messages, %d of them reached bob before the upgrade", total, atUpgrade)
}

// (e) A bad, expired or missing token gets connect_error with code
// unauthorized.
func TestSocketIOBadTokenGetsConnectError(t *testing.T) {
	sioNode(t)
	env := testenv.Start(t)
	s := node(t, env, nil)
	expired, err := auth.Mint(testenv.JWTSecret, auth.Principal{UserID: "bob", TenantID: "acme"}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"garbage": "not-a-jwt", "expired": expired, "missing": ""} {
		t.Run(name, func(t *testing.T) {
			c := startSIO(t, "http://"+s.Addr(), token, "")
			l := c.Wait("connect_error", "", 15*time.Second, nil)
			var data struct {
				Code string `json:"code"`
			}
			if err := json.Unmarshal(l.Data, &data); err != nil || data.Code != "unauthorized" || l.Message == "" {
				t.Fatalf("connect_error %q data %s, want err.data.code unauthorized", l.Message, l.Data)
			}
			if c.Index("connect") >= 0 {
				t.Fatal("connected with a bad token")
			}
		})
	}
}

// (f) Ack callbacks get the answer: room:joined for joinRoom, room:error for
// a refused join, message:accepted for sendMessage.
func TestSocketIOAckCallbacks(t *testing.T) {
	sioNode(t)
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-ack", "bob")
	conversation(t, s, "acme", "conv-other", "carol")
	bob := startSIO(t, "http://"+s.Addr(), testenv.Token(t, "bob", "acme"), "")

	id := bob.EmitAck("joinRoom", map[string]any{"conversation_id": "conv-ack"})
	ack := bob.Wait("ack", "", 15*time.Second, func(l sioLine) bool { return l.ID == id })
	ev := bob.Wait("event", "room:joined", 5*time.Second, nil)
	if !jsonEqual(ack.Data, ev.Data) || ev.event().Field("conversation_id") != "conv-ack" {
		t.Fatalf("joinRoom ack %s, room:joined %s: want the same data", ack.Data, ev.Data)
	}

	id = bob.EmitAck("joinRoom", map[string]any{"conversation_id": "conv-other"})
	ack = bob.Wait("ack", "", 10*time.Second, func(l sioLine) bool { return l.ID == id })
	if ev := bob.Wait("event", "room:error", 5*time.Second, nil); !jsonEqual(ack.Data, ev.Data) || ev.event().Field("code") != "not_member" {
		t.Fatalf("refused joinRoom ack %s, room:error %s", ack.Data, ev.Data)
	}

	id = bob.EmitAck("sendMessage", text("ack-1", "conv-ack", "with a callback"))
	ack = bob.Wait("ack", "", 10*time.Second, func(l sioLine) bool { return l.ID == id })
	acc := bob.Wait("event", "message:accepted", 5*time.Second, nil)
	if !jsonEqual(ack.Data, acc.Data) || acc.event().Field("message_id") != "ack-1" || acc.event().Field("seq") != "1" {
		t.Fatalf("sendMessage ack %s, message:accepted %s", ack.Data, acc.Data)
	}
	bob.Wait("event", "message:persisted", 15*time.Second, nil)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

// (g) Bad input at the Engine.IO level gets a clear error and disturbs no
// other session.
func TestSocketIOBadEngineIOInput(t *testing.T) {
	sioNode(t)
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-bad", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-bad")
	bob := sioConnect(t, "http://"+s.Addr(), testenv.Token(t, "bob", "acme"), "", "conv-bad")
	base := "http://" + s.Addr() + "/socket.io/?EIO=4&transport=polling"

	status, body := rawHTTP(t, "GET", base+"&sid=no-such-session", "")
	if status != 400 || body != `{"code":1,"message":"Session ID unknown"}` {
		t.Fatalf("unknown sid: %d %s", status, body)
	}
	if status, body := rawHTTP(t, "GET", strings.Replace(base, "EIO=4", "EIO=3", 1), ""); status != 400 || !strings.Contains(body, `"code":5`) {
		t.Fatalf("EIO=3: %d %s", status, body)
	}
	if status, body := rawHTTP(t, "GET", strings.Replace(base, "polling", "carrier-pigeon", 1), ""); status != 400 || !strings.Contains(body, `"code":0`) {
		t.Fatalf("unknown transport: %d %s", status, body)
	}

	sid := rawOpen(t, base)
	big := "4" + strings.Repeat("x", s.Config().Limits.HardMaxFrameBytes)
	if status, body := rawHTTP(t, "POST", base+"&sid="+sid, big); status != 413 || !strings.Contains(body, "maxPayload") {
		t.Fatalf("oversized POST: %d %s", status, body)
	}
	if status, _ := rawHTTP(t, "GET", base+"&sid="+sid, ""); status != 400 {
		t.Fatalf("session still open after an oversized POST: %d", status)
	}

	sid = rawOpen(t, base)
	if status, body := rawHTTP(t, "POST", base+"&sid="+sid, "abc"); status != 400 || !strings.Contains(body, "malformed") {
		t.Fatalf("malformed packet: %d %s", status, body)
	}

	// A malformed Socket.IO packet inside a valid Engine.IO one gets an
	// "error" event; the session stays.
	sid = rawOpen(t, base)
	rawHTTP(t, "POST", base+"&sid="+sid, `40{"token":"`+testenv.Token(t, "alice", "acme")+`"}`)
	if _, body := rawHTTP(t, "GET", base+"&sid="+sid, ""); !strings.HasPrefix(body, `40{"sid":`) {
		t.Fatalf("CONNECT answered %s", body)
	}
	rawHTTP(t, "POST", base+"&sid="+sid, `42["joinRoom",{oops`)
	if _, body := rawHTTP(t, "GET", base+"&sid="+sid, ""); !strings.HasPrefix(body, `42["error",{"code":"invalid_message"`) {
		t.Fatalf("malformed socket.io packet answered %s", body)
	}
	if status, body := rawHTTP(t, "POST", base+"&sid="+sid, "1"); status != 200 || body != "ok" {
		t.Fatalf("close packet: %d %s", status, body)
	}

	// The other sessions did not notice.
	bob.Emit("sendMessage", text("after-1", "conv-bad", "still here"))
	alice.Wait("message:new", 10*time.Second, byID("after-1"))
	alice.Emit("sendMessage", text("after-2", "conv-bad", "me too"))
	bob.Wait("event", "message:new", 10*time.Second, func(l sioLine) bool { return l.event().Field("message_id") == "after-2" })
	if bob.Index("disconnect") >= 0 {
		t.Fatal("the Socket.IO client was disconnected")
	}
}

// rawOpen does a polling handshake and returns the sid.
func rawOpen(t testing.TB, base string) string {
	t.Helper()
	status, body := rawHTTP(t, "GET", base, "")
	var h struct {
		SID string `json:"sid"`
	}
	if status != 200 || !strings.HasPrefix(body, "0") || json.Unmarshal([]byte(body[1:]), &h) != nil || h.SID == "" {
		t.Fatalf("handshake: %d %s", status, body)
	}
	return h.SID
}

func rawHTTP(t testing.TB, method, u, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
