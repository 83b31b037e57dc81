package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
)

// seqs returns the seqs of the message:new events c received.
func seqs(c *testenv.Client) []int64 {
	var out []int64
	for _, e := range c.All("message:new") {
		n, _ := strconv.ParseInt(e.Field("seq"), 10, 64)
		out = append(out, n)
	}
	return out
}

// checkExact fails unless got is exactly from..to, each once, in order.
func checkExact(t *testing.T, got []int64, from, to int64) {
	t.Helper()
	if int64(len(got)) != to-from+1 {
		t.Fatalf("got %d messages, want %d (seq %d..%d)", len(got), to-from+1, from, to)
	}
	for i, s := range got {
		if s != from+int64(i) {
			t.Fatalf("position %d has seq %d, want %d", i, s, from+int64(i))
		}
	}
}

// sender sends n messages from c, one every gap, and returns how many it
// sent so far through the counter.
func sender(c *testenv.Client, conv, prefix string, n int, gap time.Duration, sent *atomic.Int64) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			c.Emit("sendMessage", text(prefix+strconv.Itoa(i), conv, prefix+" "+strconv.Itoa(i)))
			sent.Add(1)
			time.Sleep(gap)
		}
	}()
	return done
}

// waitMessages waits up to 20 s for c to hold n message:new events.
func waitMessages(t *testing.T, c *testenv.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(seqs(c)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages within 20 s", len(seqs(c)), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lastSeq(c *testenv.Client) int64 {
	s := seqs(c)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// reconnectExact cuts bob's TCP connection while 200 messages flow, then
// reconnects with its last seq and checks it gets each message once, in
// order, through the switch to live.
func reconnectExact(t *testing.T, vars map[string]string) {
	env := testenv.Start(t)
	s := node(t, env, vars)
	conversation(t, s, "acme", "c-cu", "alice", "bob")
	alice := join(t, s, "acme", "alice", "c-cu")
	bob := join(t, s, "acme", "bob", "c-cu")
	var sent atomic.Int64
	<-sender(alice, "c-cu", "pre-", 10, 0, &sent)
	waitMessages(t, bob, 10)
	// Cut without a close frame.
	_ = bob.Conn.NetConn().Close()
	last := lastSeq(bob)
	done := sender(alice, "c-cu", "gap-", 200, 2*time.Millisecond, &sent)
	for deadline := time.Now().Add(20 * time.Second); sent.Load() < 110 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	live := sender(alice, "c-cu", "live-", 50, 5*time.Millisecond, &sent) // keeps flowing through the rejoin
	bob2 := testenv.Dial(t, s.Addr(), testenv.Token(t, "bob", "acme"), "")
	bob2.Emit("joinRoom", map[string]any{"conversation_id": "c-cu", "since_seq": last})
	if ev := bob2.Wait("room:joined", 10*time.Second, nil); ev.Field("recovered") != "true" {
		t.Fatalf("room:joined %s", ev.Data)
	}
	<-done
	<-live
	total := int64(260)
	alice.Wait("message:accepted", 20*time.Second, byID("live-49"))
	deadline := time.Now().Add(20 * time.Second)
	for lastSeq(bob2) < total && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	checkExact(t, seqs(bob2), last+1, total)
}

func TestReconnectCatchesUpExactly(t *testing.T) { reconnectExact(t, nil) }

func TestReconnectCatchesUpExactlyWithThePersisterStopped(t *testing.T) {
	reconnectExact(t, map[string]string{"PERSISTER_ENABLED": "false"})
}

func TestReconnectCatchesUpExactlyAcrossSIGKILL(t *testing.T) {
	env := testenv.Start(t)
	procEnv := env.ProcEnv(map[string]string{"LOG_LEVEL": "warn"})
	p1 := testenv.StartProc(t, procEnv)
	testenv.MustHTTP(t, 201, "POST", "http://"+p1.Addr+"/v1/admin/conversations", testenv.Token(t, "ops", "acme", "admin"),
		map[string]any{"conversation_id": "c-k", "participants": []participant{{"alice", "owner"}, {"bob", "member"}}})
	alice := joinAt(t, p1.Addr, "alice", "c-k")
	alice.Wait("room:joined", 10*time.Second, nil)
	bob := joinAt(t, p1.Addr, "bob", "c-k")
	bob.Wait("room:joined", 10*time.Second, nil)
	var sent atomic.Int64
	<-sender(alice, "c-k", "pre-", 5, 0, &sent)
	waitMessages(t, bob, 5)
	_ = bob.Conn.NetConn().Close()
	last := lastSeq(bob)
	<-sender(alice, "c-k", "gap-", 200, time.Millisecond, &sent)
	alice.Wait("message:accepted", 20*time.Second, byID("gap-199"))
	p1.Kill()

	p2 := testenv.StartProc(t, procEnv)
	alice2 := joinAt(t, p2.Addr, "alice", "c-k")
	alice2.Wait("room:joined", 10*time.Second, nil)
	bob2 := testenv.Dial(t, p2.Addr, testenv.Token(t, "bob", "acme"), "")
	bob2.Emit("joinRoom", map[string]any{"conversation_id": "c-k", "since_seq": last})
	if ev := bob2.Wait("room:joined", 10*time.Second, nil); ev.Field("recovered") != "true" || ev.Field("last_seq") != "205" {
		t.Fatalf("room:joined after restart %s", ev.Data)
	}
	<-sender(alice2, "c-k", "live-", 20, time.Millisecond, &sent)
	alice2.Wait("message:accepted", 20*time.Second, byID("live-19"))
	deadline := time.Now().Add(20 * time.Second)
	for lastSeq(bob2) < 225 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	checkExact(t, seqs(bob2), last+1, 225)
}

type page struct {
	Messages []struct {
		Seq       int64  `json:"seq"`
		MessageID string `json:"message_id"`
		Content   struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"messages"`
	HasMore bool `json:"has_more"`
}

func TestLargeGapPagesHistoryWithoutGapOrDuplicate(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"ROOM_CATCHUP_LIMIT": "50", "ROOM_RECENT_BUFFER": "64", "RATE_LIMIT_PER_MINUTE": "1000"})
	conversation(t, s, "acme", "c-gap", "alice", "bob")
	alice := join(t, s, "acme", "alice", "c-gap")
	var sent atomic.Int64
	<-sender(alice, "c-gap", "m-", 130, 0, &sent)
	alice.Wait("message:persisted", 30*time.Second, byID("m-129"))

	bob := testenv.Dial(t, s.Addr(), testenv.Token(t, "bob", "acme"), "")
	bob.Emit("joinRoom", map[string]any{"conversation_id": "c-gap", "since_seq": 10})
	if ev := bob.Wait("room:joined", 10*time.Second, nil); ev.Field("recovered") != "false" {
		t.Fatalf("room:joined %s", ev.Data)
	}
	time.Sleep(200 * time.Millisecond)
	if n := bob.Count("message:new"); n != 0 {
		t.Fatalf("%d messages pushed although the gap is beyond the limit", n)
	}
	// Page backwards from the newest over the WebSocket: 130 messages in
	// pages of 25, the recent buffer (64) and MongoDB together.
	var got []int64
	before := int64(0)
	for i := 0; i < 10; i++ {
		req := map[string]any{"conversation_id": "c-gap", "limit": 25}
		if before > 0 {
			req["before_seq"] = before
		}
		bob.Emit("history:get", req)
		var p page
		if err := json.Unmarshal(bob.Wait("history:page", 10*time.Second, nil).Data, &p); err != nil {
			t.Fatal(err)
		}
		var chunk []int64
		for _, m := range p.Messages {
			chunk = append(chunk, m.Seq)
		}
		got = append(chunk, got...)
		if !p.HasMore {
			break
		}
		before = p.Messages[0].Seq
	}
	checkExact(t, got, 1, 130)
	// The HTTP API pages forwards the same way.
	var fwd []int64
	after := int64(0)
	for i := 0; i < 10; i++ {
		b := testenv.MustHTTP(t, 200, "GET", "http://"+s.Addr()+"/v1/conversations/c-gap/messages?limit=40&after_seq="+strconv.FormatInt(after, 10), testenv.Token(t, "bob", "acme"), nil)
		var p page
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Messages {
			fwd = append(fwd, m.Seq)
			// The first pages come from MongoDB (the recent buffer holds
			// the last 64): the content reads back as it was sent.
			if want := "m- " + strings.TrimPrefix(m.MessageID, "m-"); m.Content.Type != "text" || m.Content.Text != want {
				t.Fatalf("message %s (seq %d) has content %+v, want text %q", m.MessageID, m.Seq, m.Content, want)
			}
		}
		if !p.HasMore {
			break
		}
		after = p.Messages[len(p.Messages)-1].Seq
	}
	checkExact(t, fwd, 1, 130)
}

func TestReadMarkersMoveForwardAndSurviveARestart(t *testing.T) {
	env := testenv.Start(t)
	procEnv := env.ProcEnv(map[string]string{"LOG_LEVEL": "warn"})
	p1 := testenv.StartProc(t, procEnv)
	testenv.MustHTTP(t, 201, "POST", "http://"+p1.Addr+"/v1/admin/conversations", testenv.Token(t, "ops", "acme", "admin"),
		map[string]any{"conversation_id": "c-rd", "participants": []participant{{"alice", "owner"}, {"bob", "member"}}})
	alice := joinAt(t, p1.Addr, "alice", "c-rd")
	alice.Wait("room:joined", 10*time.Second, nil)
	bob := joinAt(t, p1.Addr, "bob", "c-rd")
	bob.Wait("room:joined", 10*time.Second, nil)
	var sent atomic.Int64
	<-sender(alice, "c-rd", "r-", 10, 0, &sent)
	alice.Wait("message:accepted", 10*time.Second, byID("r-9"))

	bob.Emit("message:read", map[string]any{"conversation_id": "c-rd", "seq": 6})
	if ev := alice.Wait("room:read", 5*time.Second, nil); ev.Field("user_id") != "bob" || ev.Field("seq") != "6" {
		t.Fatalf("room:read %s", ev.Data)
	}
	bob.Emit("message:read", map[string]any{"conversation_id": "c-rd", "seq": 3}) // backwards: ignored
	bob.Emit("message:read", map[string]any{"conversation_id": "c-rd", "seq": 7})
	if ev := alice.Wait("room:read", 5*time.Second, nil); ev.Field("seq") != "7" {
		t.Fatalf("second room:read %s (a marker moved back?)", ev.Data)
	}
	bob2 := joinAt(t, p1.Addr, "bob", "c-rd")
	if ev := bob2.Wait("room:joined", 5*time.Second, nil); ev.Field("last_read_seq") != "7" || ev.Field("unread") != "3" {
		t.Fatalf("room:joined %s", ev.Data)
	}
	time.Sleep(600 * time.Millisecond) // markers are written with the snapshot, within 200 ms
	p1.Kill()
	p2 := testenv.StartProc(t, procEnv)
	bob3 := joinAt(t, p2.Addr, "bob", "c-rd")
	if ev := bob3.Wait("room:joined", 10*time.Second, nil); ev.Field("last_read_seq") != "7" || ev.Field("unread") != "3" {
		t.Fatalf("room:joined after restart %s", ev.Data)
	}
	alice3 := joinAt(t, p2.Addr, "alice", "c-rd")
	if ev := alice3.Wait("room:joined", 10*time.Second, nil); ev.Field("last_read_seq") != "0" || ev.Field("unread") != "10" {
		t.Fatalf("alice's room:joined %s", ev.Data)
	}
}

func TestHistoryIsRefusedToOutsiders(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	roleConversation(t, s.Addr(), "acme", "c-h", staff)
	olga := join(t, s, "acme", "olga", "c-h")
	olga.Emit("sendMessage", text("secret-1", "c-h", "secret"))
	olga.Wait("message:persisted", 10*time.Second, byID("secret-1"))
	olga.Emit("room:ban", mod("c-h", "ann", 0))
	olga.Wait("room:moderated", 5*time.Second, nil)

	cases := []struct {
		user, tenant, code string
		status             int
	}{
		{"olga", "evil", "forbidden", http.StatusForbidden},
		{"zed", "acme", "not_member", http.StatusNotFound},
		{"ann", "acme", "banned", http.StatusForbidden},
	}
	for _, c := range cases {
		cl := testenv.Dial(t, s.Addr(), testenv.Token(t, c.user, c.tenant), "")
		cl.Emit("history:get", map[string]any{"conversation_id": "c-h", "limit": 10})
		ev := cl.Wait("room:error", 5*time.Second, nil)
		if ev.Field("code") != c.code || cl.Count("history:page") != 0 {
			t.Fatalf("%s/%s history:get: %s", c.tenant, c.user, ev.Data)
		}
		st, b := testenv.HTTP(t, "GET", "http://"+s.Addr()+"/v1/conversations/c-h/messages", testenv.Token(t, c.user, c.tenant), nil)
		if st != c.status || json.Valid(b) && string(b) != "" && containsSecret(b) {
			t.Fatalf("%s/%s GET messages: %d %s", c.tenant, c.user, st, b)
		}
	}
	st, b := testenv.HTTP(t, "GET", "http://"+s.Addr()+"/v1/conversations/c-h/messages", testenv.Token(t, "bea", "acme"), nil)
	if st != http.StatusOK || !containsSecret(b) {
		t.Fatalf("a member's history: %d %s", st, b)
	}
}

func containsSecret(b []byte) bool {
	var p page
	return json.Unmarshal(b, &p) == nil && len(p.Messages) > 0 && p.Messages[0].MessageID == "secret-1"
}

// TestPendingConfirmationsAreVisible: messages that no persister has
// stored show in socket_delivery_pending, and leave it once a node with
// a persister stores them and their sender is told.
func TestPendingConfirmationsAreVisible(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"PERSISTER_ENABLED": "false"})
	conversation(t, s, "acme", "c-p", "alice", "bob")
	alice := join(t, s, "acme", "alice", "c-p")
	for i := range 3 {
		alice.Emit("sendMessage", text(fmt.Sprintf("p-%d", i), "c-p", fmt.Sprintf("waiting %d", i)))
	}
	for i := range 3 {
		alice.Wait("message:accepted", 10*time.Second, byID(fmt.Sprintf("p-%d", i)))
	}
	if n := metric(t, s.Addr(), "socket_delivery_pending"); n != 3 {
		t.Fatalf("socket_delivery_pending = %v with no persister, want 3", n)
	}
	// Another node's persister stores them and the events come back through
	// Kafka. It runs as a process: two nodes in one process would share
	// gRPC's global logger, which actor remoting sets at start.
	testenv.StartProc(t, env.ProcEnv(map[string]string{"LOG_LEVEL": "warn"}))
	for i := range 3 {
		alice.Wait("message:persisted", 20*time.Second, byID(fmt.Sprintf("p-%d", i)))
	}
	if n := metric(t, s.Addr(), "socket_delivery_pending"); n != 0 {
		t.Fatalf("socket_delivery_pending = %v once persisted, want 0", n)
	}
}

// TestPersisterLingerGathersABurstIntoOneInsert: with
// MESSAGE_PERSISTENCE_LINGER_MS, the messages that arrive within the
// linger of the first go to MongoDB in one bulk insert, and none is
// confirmed before the linger is over.
func TestPersisterLingerGathersABurstIntoOneInsert(t *testing.T) {
	const linger = 1500 * time.Millisecond
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"MESSAGE_PERSISTENCE_LINGER_MS": fmt.Sprint(linger.Milliseconds())})
	conversation(t, s, "acme", "c-l", "alice", "bob")
	alice := join(t, s, "acme", "alice", "c-l")
	before := metric(t, s.Addr(), "kafka_messages_persistence_latency_seconds_count")
	start := time.Now()
	const n = 10
	for i := range n {
		alice.Emit("sendMessage", text(fmt.Sprintf("l-%d", i), "c-l", fmt.Sprintf("burst %d", i)))
	}
	for i := range n {
		alice.Wait("message:persisted", 20*time.Second, byID(fmt.Sprintf("l-%d", i)))
		if i == 0 {
			if d := time.Since(start); d < linger {
				t.Fatalf("first message:persisted after %v, before the linger (%v)", d, linger)
			}
		}
	}
	if sent := time.Since(start); sent > 20*time.Second {
		t.Fatalf("burst took %v", sent)
	}
	if got := metric(t, s.Addr(), "kafka_messages_persistence_latency_seconds_count") - before; got != 1 {
		t.Fatalf("%v bulk inserts for a burst of %d within the linger, want 1", got, n)
	}
}
