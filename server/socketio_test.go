package server_test

import (
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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/testenv"
)

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
