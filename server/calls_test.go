package server_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
)

func TestCallThreePartySignallingReachesOnlyItsRecipient(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-call", "alice", "bob", "carol", "dave")
	conversation(t, s, "globex", "conv-g", "zed")
	alice, bob, carol := dialUser(t, s, "acme", "alice"), dialUser(t, s, "acme", "bob"), dialUser(t, s, "acme", "carol")

	alice.Emit("call:start", map[string]any{"conversation_id": "conv-call", "call_id": "call-1", "media": "video"})
	st := alice.Wait("call:started", 10*time.Second, nil)
	if st.Field("call_id") != "call-1" || st.Field("started_by") != "alice" || st.Field("media") != "video" || st.Field("conversation_id") != "conv-call" {
		t.Fatalf("call:started = %s", st.Data)
	}
	joinCall(t, "call-1", []string{"alice", "bob", "carol"}, alice, bob, carol)

	type sig struct {
		from, to *testenv.Client
		fromID   string
		typ      string
		payload  string
	}
	sigs := []sig{
		{alice, bob, "alice", "offer", `{"type":"offer","sdp":"v=0 offer alice to bob"}`},
		{bob, alice, "bob", "answer", `{"type":"answer","sdp":"v=0 answer bob to alice"}`},
		{carol, alice, "carol", "candidate", `{"candidate":"candidate:1 1 udp 2122260223 10.0.0.3 54400 typ host","sdpMid":"0"}`},
		{alice, carol, "alice", "offer", `{"type":"offer","sdp":"v=0 offer alice to carol"}`},
	}
	for _, sg := range sigs {
		sg.from.Emit("call:signal", map[string]any{"call_id": "call-1", "to": map[*testenv.Client]string{alice: "alice", bob: "bob", carol: "carol"}[sg.to], "type": sg.typ, "payload": json.RawMessage(sg.payload)})
		e := sg.to.Wait("call:signal", 10*time.Second, func(e testenv.Event) bool { return e.Field("from") == sg.fromID && e.Field("type") == sg.typ })
		if e.Field("call_id") != "call-1" || !sameJSON(t, e.Field("payload"), sg.payload) {
			t.Fatalf("signal %s from %s arrived as %s", sg.typ, sg.fromID, e.Data)
		}
	}
	time.Sleep(300 * time.Millisecond) // a misdirected copy would be here by now
	for name, want := range map[*testenv.Client]int{alice: 2, bob: 1, carol: 1} {
		if n := name.Count("call:signal"); n != want {
			t.Fatalf("a participant got %d signals, want %d", n, want)
		}
	}

	// Refusals, each with its stable code.
	dave, zed := dialUser(t, s, "acme", "dave"), dialUser(t, s, "globex", "zed")
	outsider := dialUser(t, s, "acme", "mallory")
	cases := []struct {
		name  string
		c     *testenv.Client
		event string
		data  map[string]any
		code  string
	}{
		{"signal to a user not in the call", alice, "call:signal", map[string]any{"call_id": "call-1", "to": "dave", "type": "offer", "payload": map[string]any{"sdp": "x"}}, "not_found"},
		{"signal with a bad type", alice, "call:signal", map[string]any{"call_id": "call-1", "to": "bob", "type": "bye", "payload": map[string]any{}}, "invalid_message"},
		{"signal from a non-participant", dave, "call:signal", map[string]any{"call_id": "call-1", "to": "bob", "type": "offer", "payload": map[string]any{}}, "not_member"},
		{"join by a non-member", outsider, "call:join", map[string]any{"call_id": "call-1"}, "not_member"},
		{"start by a non-member", outsider, "call:start", map[string]any{"conversation_id": "conv-call", "media": "audio"}, "not_member"},
		{"start on another tenant's conversation", zed, "call:start", map[string]any{"conversation_id": "conv-call", "media": "audio"}, "forbidden"},
		{"join another tenant's call", zed, "call:join", map[string]any{"call_id": "call-1"}, "not_found"},
		{"start an existing call", dave, "call:start", map[string]any{"conversation_id": "conv-call", "call_id": "call-1"}, "invalid_message"},
		{"end by a member who did not start it", bob, "call:end", map[string]any{"call_id": "call-1"}, "forbidden"},
		{"start with bad media", alice, "call:start", map[string]any{"conversation_id": "conv-call", "media": "smell"}, "invalid_message"},
	}
	for _, tc := range cases {
		tc.c.Emit(tc.event, tc.data)
		e := tc.c.Wait("call:error", 10*time.Second, nil)
		if e.Field("code") != tc.code {
			t.Fatalf("%s: call:error %s, want code %s", tc.name, e.Data, tc.code)
		}
	}

	bob.Emit("call:leave", map[string]any{"call_id": "call-1"})
	for _, c := range []*testenv.Client{alice, bob, carol} {
		e := c.Wait("call:participant_left", 10*time.Second, field("user_id", "bob"))
		if e.Field("reason") != "left" {
			t.Fatalf("participant_left = %s", e.Data)
		}
	}
	carol.Close()
	if e := alice.Wait("call:participant_left", 10*time.Second, field("user_id", "carol")); e.Field("reason") != "disconnected" {
		t.Fatalf("participant_left on disconnect = %s", e.Data)
	}
	bob.Emit("call:join", map[string]any{"call_id": "call-1"})
	alice.Wait("call:participant_joined", 10*time.Second, field("user_id", "bob"))
	alice.Emit("call:end", map[string]any{"call_id": "call-1"})
	for _, c := range []*testenv.Client{alice, bob} {
		e := c.Wait("call:ended", 10*time.Second, nil)
		if e.Field("reason") != "ended" || e.Field("ended_by") != "alice" {
			t.Fatalf("call:ended = %s", e.Data)
		}
	}
	bob.Emit("call:join", map[string]any{"call_id": "call-1"})
	if e := bob.Wait("call:error", 10*time.Second, nil); e.Field("code") != "not_found" {
		t.Fatalf("join after end: %s", e.Data)
	}
}

func sameJSON(t testing.TB, a, b string) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}
