package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/testenv"
)

func TestBadInputGetsItsCodeAndTheConnectionStaysUsable(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, map[string]string{
		"WS_MAX_FRAME_BYTES":     "4096",
		"MESSAGE_MAX_TEXT_CHARS": "100",
		"PROHIBITED_PATTERNS":    "(?i)buy now;;casino",
	})
	conversation(t, s, "acme", "conv-bad", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-bad")

	cases := []struct {
		name  string
		frame string
		event string // the event that answers
		code  string
	}{
		{"not json", `not json`, "error", "invalid_message"},
		{"no event", `{"data":{}}`, "error", "invalid_message"},
		{"unknown event", `{"event":"nope","data":{}}`, "error", "invalid_message"},
		{"join without data", `{"event":"joinRoom"}`, "room:error", "invalid_message"},
		{"join with a string", `{"event":"joinRoom","data":"x"}`, "room:error", "invalid_message"},
		{"join with a bad id", `{"event":"joinRoom","data":{"conversation_id":"` + strings.Repeat("x", 200) + `"}}`, "room:error", "invalid_message"},
		{"send without message_id", `{"event":"sendMessage","data":{"conversation_id":"conv-bad","content":{"type":"text","text":"x"}}}`, "message:failed", "invalid_message"},
		{"send without content", `{"event":"sendMessage","data":{"message_id":"b1","conversation_id":"conv-bad"}}`, "message:failed", "invalid_message"},
		{"content not an object", `{"event":"sendMessage","data":{"message_id":"b2","conversation_id":"conv-bad","content":"hi"}}`, "message:failed", "invalid_message"},
		{"unknown content type", `{"event":"sendMessage","data":{"message_id":"b3","conversation_id":"conv-bad","content":{"type":"exe","text":"x"}}}`, "message:failed", "invalid_message"},
		{"text missing", `{"event":"sendMessage","data":{"message_id":"b4","conversation_id":"conv-bad","content":{"type":"text"}}}`, "message:failed", "invalid_message"},
		{"text too long", `{"event":"sendMessage","data":{"message_id":"b5","conversation_id":"conv-bad","content":{"type":"text","text":"` + strings.Repeat("é", 101) + `"}}}`, "message:failed", "too_large"},
		{"prohibited text", `{"event":"sendMessage","data":{"message_id":"b6","conversation_id":"conv-bad","content":{"type":"text","text":"BUY NOW!"}}}`, "message:failed", "invalid_message"},
		{"frame too large", `{"event":"sendMessage","data":{"message_id":"b7","conversation_id":"conv-bad","content":{"type":"text","text":"x","pad":"` + strings.Repeat("p", 5000) + `"}}}`, "error", "too_large"},
	}
	// The client helper fails the test that dialled it, so the cases run in
	// a loop rather than as subtests.
	for i, tc := range cases {
		alice.Raw([]byte(tc.frame))
		ev := alice.Wait(tc.event, 5*time.Second, nil)
		if ev.Field("code") != tc.code {
			t.Fatalf("%s: got %s %s, want code %s", tc.name, ev.Name, ev.Data, tc.code)
		}
		// The connection still works: a valid message goes through.
		id := fmt.Sprintf("ok-%d", i)
		alice.Emit("sendMessage", text(id, "conv-bad", "still here after "+tc.name))
		alice.Wait("message:accepted", 5*time.Second, byID(id))
	}
	// Invalid UTF-8 in a text frame: gws's own client refuses to send it, so
	// the frame goes out as a raw text frame through the same socket.
	if err := alice.Conn.Writev(gws.OpcodeText, []byte(`{"event":"joinRoom","data":{"conversation_id":"`), []byte{0xff, 0xfe}, []byte(`"}}`)); err != nil {
		t.Fatal(err)
	}
	if ev := alice.Wait("error", 5*time.Second, nil); ev.Field("code") != "invalid_message" {
		t.Fatalf("invalid UTF-8: got %s", ev.Data)
	}
	if err := alice.Conn.WriteMessage(gws.OpcodeBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if ev := alice.Wait("error", 5*time.Second, nil); ev.Field("code") != "invalid_message" {
		t.Fatalf("binary frame: got %s", ev.Data)
	}
	// Nothing invalid reached Kafka: exactly the valid messages are there.
	want := len(cases)
	recs := kafkaMessages(t, env, "chat.messages", 10*time.Second, want)
	if len(recs) != want {
		t.Fatalf("chat.messages holds %d records, want %d (only the valid ones)", len(recs), want)
	}
	for _, r := range recs {
		if !strings.HasPrefix(r.MessageID, "ok-") {
			t.Fatalf("invalid message %q reached Kafka", r.MessageID)
		}
	}
}

func TestRateLimitsHoldAcrossAUsersConnections(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"RATE_LIMIT_PER_MINUTE": "10", "SPAM_REPEAT_COUNT": "3"})
	conversation(t, s, "acme", "conv-rl", "alice", "bob")
	a1 := join(t, s, "acme", "alice", "conv-rl")
	a2 := join(t, s, "acme", "alice", "conv-rl")

	// The spam rule: the same text a fourth time is refused.
	for i := 0; i < 4; i++ {
		a1.Emit("sendMessage", text(fmt.Sprintf("spam-%d", i), "conv-rl", "same text"))
	}
	for i := 0; i < 3; i++ {
		a1.Wait("message:accepted", 5*time.Second, byID(fmt.Sprintf("spam-%d", i)))
	}
	if ev := a1.Wait("message:failed", 5*time.Second, byID("spam-3")); ev.Field("code") != "rate_limited" {
		t.Fatalf("spam: %s", ev.Data)
	}
	// Per minute: 10 in all, whichever connection sends them (3 sent above).
	for i := 0; i < 7; i++ {
		c := a1
		if i%2 == 1 {
			c = a2
		}
		id := fmt.Sprintf("rl-%d", i)
		c.Emit("sendMessage", text(id, "conv-rl", id))
		c.Wait("message:accepted", 5*time.Second, byID(id))
	}
	a2.Emit("sendMessage", text("rl-over", "conv-rl", "one too many"))
	if ev := a2.Wait("message:failed", 5*time.Second, byID("rl-over")); ev.Field("code") != "rate_limited" {
		t.Fatalf("over the limit: %s", ev.Data)
	}
	// Another user is not affected.
	bob := join(t, s, "acme", "bob", "conv-rl")
	bob.Emit("sendMessage", text("bob-1", "conv-rl", "hi"))
	bob.Wait("message:accepted", 5*time.Second, byID("bob-1"))
}

func TestNotMemberAndOtherTenant(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-priv", "alice", "bob")

	carol := testenv.Dial(t, s.Addr(), testenv.Token(t, "carol", "acme"), "")
	carol.Emit("joinRoom", map[string]any{"conversation_id": "conv-priv"})
	if ev := carol.Wait("room:error", 5*time.Second, nil); ev.Field("code") != "not_member" {
		t.Fatalf("non-member join: %s", ev.Data)
	}
	carol.Emit("sendMessage", text("c-1", "conv-priv", "let me in"))
	if ev := carol.Wait("message:failed", 5*time.Second, byID("c-1")); ev.Field("code") != "not_member" {
		t.Fatalf("non-member send: %s", ev.Data)
	}
	// alice of another tenant: same user id, same conversation id.
	mallory := testenv.Dial(t, s.Addr(), testenv.Token(t, "alice", "evil"), "")
	mallory.Emit("joinRoom", map[string]any{"conversation_id": "conv-priv"})
	if ev := mallory.Wait("room:error", 5*time.Second, nil); ev.Field("code") != "forbidden" {
		t.Fatalf("other tenant join: %s", ev.Data)
	}
	mallory.Emit("sendMessage", text("e-1", "conv-priv", "hello"))
	if ev := mallory.Wait("message:failed", 5*time.Second, byID("e-1")); ev.Field("code") != "forbidden" {
		t.Fatalf("other tenant send: %s", ev.Data)
	}
	// The admin API of the other tenant sees nothing of it.
	status, body := testenv.HTTP(t, "GET", "http://"+s.Addr()+"/v1/admin/conversations/conv-priv", testenv.Token(t, "boss", "evil", "admin"), nil)
	if status != http.StatusNotFound {
		t.Fatalf("other tenant admin GET: %d %s", status, body)
	}
	status, _ = testenv.HTTP(t, "DELETE", "http://"+s.Addr()+"/v1/admin/conversations/conv-priv", testenv.Token(t, "boss", "evil", "admin"), nil)
	if status != http.StatusNotFound {
		t.Fatalf("other tenant admin DELETE: %d", status)
	}
	status, _ = testenv.HTTP(t, "GET", "http://"+s.Addr()+"/v1/admin/conversations/conv-priv", testenv.Token(t, "alice", "acme"), nil)
	if status != http.StatusForbidden {
		t.Fatalf("non-admin GET: %d", status)
	}
	// The members still work.
	join(t, s, "acme", "alice", "conv-priv")
}

func TestUpgradeRefusesBadTokens(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	expired, err := auth.Mint(testenv.JWTSecret, auth.Principal{UserID: "alice", TenantID: "acme"}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auth.Mint("another-secret-of-some-length", auth.Principal{UserID: "alice", TenantID: "acme"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noTenant, err := auth.Mint(testenv.JWTSecret, auth.Principal{UserID: "alice"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"missing": "", "expired": expired, "badly signed": forged, "no tenant": noTenant, "garbage": "abc.def.ghi"} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/ws", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Code, Message string }
			if err := jsonDecode(resp.Body, &body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.StatusCode != http.StatusUnauthorized || body.Code != "unauthorized" || body.Message == "" {
				t.Fatalf("status %d body %+v, want 401 unauthorized", resp.StatusCode, body)
			}
		})
	}
	// A good token in the Authorization header is accepted too.
	c, resp, err := testenv.TryDial(t, s.Addr(), testenv.Token(t, "alice", "acme"), "")
	if err != nil {
		t.Fatalf("good token refused: %v %v", err, resp)
	}
	c.Close()
}

func TestFloodOfEventsIsBoundedAndEveryEventAnswered(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"WS_OUTBOUND_QUEUE": "100000"})
	conversation(t, s, "acme", "conv-flood", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-flood")
	bob := join(t, s, "acme", "bob", "conv-flood")

	// One write of 5,000 events: the server reads them faster than the
	// connection's actor handles them.
	const n = 5000
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = fmt.Appendf(nil, `{"event":"flood","data":{"i":%d}}`, i)
	}
	alice.Burst(frames)
	deadline := time.Now().Add(30 * time.Second)
	for alice.Count("error") < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything beyond n would show now
	queued, unknown := 0, 0
	for _, ev := range alice.All("error") {
		switch {
		case ev.Field("code") == "rate_limited" && strings.Contains(ev.Field("message"), "too many events waiting"):
			queued++
		case ev.Field("code") == "invalid_message" && strings.Contains(ev.Field("message"), "unknown event"):
			unknown++
		default:
			t.Fatalf("unexpected error: %s", ev.Data)
		}
	}
	// Every event is answered once: handled (unknown) or refused (queued).
	if queued+unknown != n || queued == 0 {
		t.Fatalf("%d events: %d refused as queued, %d handled", n, queued, unknown)
	}
	t.Logf("%d events in one write: %d handled, %d refused while %d waited", n, unknown, queued, 256)
	// The connection, and the others, go on.
	alice.Emit("sendMessage", text("after-flood", "conv-flood", "still here"))
	alice.Wait("message:accepted", 5*time.Second, byID("after-flood"))
	bob.Wait("message:new", 5*time.Second, byID("after-flood"))
}
