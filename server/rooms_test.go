package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/server"
)

// roleConversation creates a conversation with explicit roles.
func roleConversation(t testing.TB, addr, tenant, id string, roles map[string]string) {
	t.Helper()
	var ps []participant
	for u, r := range roles {
		ps = append(ps, participant{UserID: u, Role: r})
	}
	testenv.MustHTTP(t, 201, "POST", "http://"+addr+"/v1/admin/conversations", testenv.Token(t, "admin-"+tenant, tenant, "admin"),
		map[string]any{"conversation_id": id, "name": id, "participants": ps})
}

var staff = map[string]string{"olga": "owner", "adam": "admin", "mona": "moderator", "ann": "member", "bea": "member", "cid": "member"}

func mod(conv, user string, durationS int) map[string]any {
	m := map[string]any{"conversation_id": conv, "user_id": user, "reason": "test"}
	if durationS > 0 {
		m["duration_s"] = durationS
	}
	return m
}

func code(c *testenv.Client, name string) string {
	return c.Wait(name, 5*time.Second, nil).Field("code")
}

func TestBanRemovesLiveConnectionsAndExpires(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	roleConversation(t, s.Addr(), "acme", "c-ban", staff)
	mona := join(t, s, "acme", "mona", "c-ban")
	ann1 := join(t, s, "acme", "ann", "c-ban")
	ann2 := join(t, s, "acme", "ann", "c-ban")
	bea := join(t, s, "acme", "bea", "c-ban")

	mona.Emit("room:ban", mod("c-ban", "ann", 0))
	if ev := mona.Wait("room:moderated", 5*time.Second, nil); ev.Field("action") != "ban" || ev.Field("user_id") != "ann" {
		t.Fatalf("moderated: %s", ev.Data)
	}
	for _, c := range []*testenv.Client{ann1, ann2, bea} {
		c.Wait("room:member_banned", 5*time.Second, func(e testenv.Event) bool { return e.Field("user_id") == "ann" })
	}
	// ann's live connections are out of the room: they see nothing more.
	bea.Emit("sendMessage", text("after-ban", "c-ban", "ann cannot see this"))
	bea.Wait("message:accepted", 5*time.Second, byID("after-ban"))
	mona.Wait("message:new", 5*time.Second, byID("after-ban"))
	time.Sleep(300 * time.Millisecond)
	if ann1.Position("message:new", byID("after-ban")) >= 0 || ann2.Position("message:new", byID("after-ban")) >= 0 {
		t.Fatal("a banned user's connection still receives the room")
	}
	ann1.Emit("sendMessage", text("from-ann", "c-ban", "let me talk"))
	if ev := ann1.Wait("message:failed", 5*time.Second, byID("from-ann")); ev.Field("code") != "banned" {
		t.Fatalf("banned send: %s", ev.Data)
	}
	ann1.Emit("joinRoom", map[string]any{"conversation_id": "c-ban"})
	if c := code(ann1, "room:error"); c != "banned" {
		t.Fatalf("banned join: %s", c)
	}
	mona.Emit("room:unban", mod("c-ban", "ann", 0))
	mona.Wait("room:moderated", 5*time.Second, func(e testenv.Event) bool { return e.Field("action") == "unban" })
	ann1.Emit("joinRoom", map[string]any{"conversation_id": "c-ban"})
	ann1.Wait("room:joined", 5*time.Second, nil)

	// A 2-second ban ends by itself.
	mona.Emit("room:ban", mod("c-ban", "cid", 2))
	mona.Wait("room:moderated", 5*time.Second, func(e testenv.Event) bool { return e.Field("user_id") == "cid" })
	cid := testenv.Dial(t, s.Addr(), testenv.Token(t, "cid", "acme"), "")
	cid.Emit("joinRoom", map[string]any{"conversation_id": "c-ban"})
	if c := code(cid, "room:error"); c != "banned" {
		t.Fatalf("temporary ban: %s", c)
	}
	bea.Wait("room:member_unbanned", 4*time.Second, func(e testenv.Event) bool {
		return e.Field("user_id") == "cid" && e.Field("reason") == "expired"
	})
	cid.Emit("joinRoom", map[string]any{"conversation_id": "c-ban"})
	cid.Wait("room:joined", 5*time.Second, nil)
}

func TestMuteBlocksSendingNotReadingAndExpires(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	roleConversation(t, s.Addr(), "acme", "c-mute", staff)
	mona := join(t, s, "acme", "mona", "c-mute")
	ann := join(t, s, "acme", "ann", "c-mute")
	bea := join(t, s, "acme", "bea", "c-mute")

	mona.Emit("room:mute", mod("c-mute", "ann", 2))
	bea.Wait("room:member_muted", 5*time.Second, nil)
	ann.Emit("sendMessage", text("muted-1", "c-mute", "hello?"))
	if ev := ann.Wait("message:failed", 5*time.Second, byID("muted-1")); ev.Field("code") != "muted" {
		t.Fatalf("muted send: %s", ev.Data)
	}
	bea.Emit("sendMessage", text("to-ann", "c-mute", "you can read"))
	ann.Wait("message:new", 5*time.Second, byID("to-ann"))
	ann.Wait("room:member_unmuted", 4*time.Second, func(e testenv.Event) bool { return e.Field("reason") == "expired" })
	ann.Emit("sendMessage", text("muted-2", "c-mute", "back"))
	ann.Wait("message:accepted", 5*time.Second, byID("muted-2"))
}

func TestModerationRankRules(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	roleConversation(t, s.Addr(), "acme", "c-rank", staff)
	mona := join(t, s, "acme", "mona", "c-rank")
	adam := join(t, s, "acme", "adam", "c-rank")
	ann := join(t, s, "acme", "ann", "c-rank")
	cases := []struct {
		who    *testenv.Client
		event  string
		target string
		code   string
	}{
		{mona, "room:ban", "adam", "forbidden"},  // a moderator cannot ban an admin
		{adam, "room:kick", "olga", "forbidden"}, // nobody can kick the owner
		{mona, "room:kick", "olga", "forbidden"}, //
		{ann, "room:mute", "bea", "forbidden"},   // a member cannot moderate
		{mona, "room:ban", "mona", "forbidden"},  // not oneself either: same rank
		{mona, "room:kick", "zed", "not_member"}, // the target must be a participant
		{adam, "room:ban", "mona", ""},           // an admin can ban a moderator
		{adam, "room:unban", "mona", ""},         //
	}
	for i, c := range cases {
		c.who.Emit(c.event, mod("c-rank", c.target, 0))
		if c.code == "" {
			if ev := c.who.Wait("room:moderated", 5*time.Second, nil); ev.Field("user_id") != c.target {
				t.Fatalf("case %d: %s", i, ev.Data)
			}
			continue
		}
		if got := code(c.who, "room:error"); got != c.code {
			t.Fatalf("case %d (%s %s): code %q, want %q", i, c.event, c.target, got, c.code)
		}
	}
	// Through the admin API: above room admins, never on the owner.
	url := "http://" + s.Addr() + "/v1/admin/conversations/c-rank/moderation"
	tok := testenv.Token(t, "boss", "acme", "admin")
	if st, b := testenv.HTTP(t, "POST", url, tok, map[string]any{"action": "kick", "user_id": "olga"}); st != http.StatusForbidden {
		t.Fatalf("admin API kick owner: %d %s", st, b)
	}
	if st, b := testenv.HTTP(t, "POST", url, tok, map[string]any{"action": "mute", "user_id": "adam", "duration_s": 60}); st != http.StatusOK {
		t.Fatalf("admin API mute admin: %d %s", st, b)
	}
	if st, _ := testenv.HTTP(t, "POST", url, testenv.Token(t, "ann", "acme"), map[string]any{"action": "kick", "user_id": "bea"}); st != http.StatusForbidden {
		t.Fatalf("non-admin token: %d", st)
	}
	if st, _ := testenv.HTTP(t, "POST", url, tok, map[string]any{"action": "explode", "user_id": "bea"}); st != http.StatusBadRequest {
		t.Fatalf("bad action: %d", st)
	}
}

func TestOtherTenantCannotModerateOrRead(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	roleConversation(t, s.Addr(), "acme", "c-iso", staff)
	ann := join(t, s, "acme", "ann", "c-iso")
	// evil has users with the same names, and its own admin.
	evilMona := testenv.Dial(t, s.Addr(), testenv.Token(t, "mona", "evil"), "")
	for _, ev := range []string{"room:kick", "room:ban", "room:unban", "room:mute", "room:unmute"} {
		evilMona.Emit(ev, mod("c-iso", "ann", 0))
		if c := code(evilMona, "room:error"); c != "forbidden" {
			t.Fatalf("%s from another tenant: %s", ev, c)
		}
	}
	evilMona.Emit("joinRoom", map[string]any{"conversation_id": "c-iso"})
	if c := code(evilMona, "room:error"); c != "forbidden" {
		t.Fatalf("join from another tenant: %s", c)
	}
	evilMona.Emit("typing", map[string]any{"conversation_id": "c-iso"})
	if c := code(evilMona, "room:error"); c != "forbidden" {
		t.Fatalf("typing from another tenant: %s", c)
	}
	base := "http://" + s.Addr()
	evil := testenv.Token(t, "boss", "evil", "admin")
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/admin/conversations/c-iso/moderation"},
		{"GET", "/v1/admin/conversations/c-iso/moderation"},
		{"GET", "/v1/admin/rooms/c-iso"},
	} {
		st, b := testenv.HTTP(t, c.method, base+c.path, evil, map[string]any{"action": "ban", "user_id": "ann"})
		if st != http.StatusForbidden {
			t.Fatalf("%s %s from another tenant: %d %s", c.method, c.path, st, b)
		}
	}
	_, b := testenv.HTTP(t, "GET", base+"/v1/admin/rooms", evil, nil)
	var list struct{ Rooms []json.RawMessage }
	if err := json.Unmarshal(b, &list); err != nil || len(list.Rooms) != 0 {
		t.Fatalf("another tenant lists rooms: %s", b)
	}
	// Nothing changed: ann still sends, nothing was recorded.
	ann.Emit("sendMessage", text("iso-1", "c-iso", "still here"))
	ann.Wait("message:accepted", 5*time.Second, byID("iso-1"))
	_, b = testenv.HTTP(t, "GET", base+"/v1/admin/conversations/c-iso/moderation", testenv.Token(t, "boss", "acme", "admin"), nil)
	var hist struct{ Actions []json.RawMessage }
	if err := json.Unmarshal(b, &hist); err != nil || len(hist.Actions) != 0 {
		t.Fatalf("moderation history after refused attempts: %s", b)
	}
	// The owner tenant's admin read API sees the room.
	_, b = testenv.HTTP(t, "GET", base+"/v1/admin/rooms/c-iso", testenv.Token(t, "boss", "acme", "admin"), nil)
	var view struct {
		MembersOnline int `json:"members_online"`
	}
	if err := json.Unmarshal(b, &view); err != nil || view.MembersOnline != 1 {
		t.Fatalf("room view: %s", b)
	}
}

func TestRemovedParticipantIsRefusedWithinASecond(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	roleConversation(t, s.Addr(), "acme", "c-rm", staff)
	bea := join(t, s, "acme", "bea", "c-rm")
	bea.Emit("sendMessage", text("pre", "c-rm", "cached now"))
	bea.Wait("message:accepted", 5*time.Second, byID("pre"))

	start := time.Now()
	testenv.MustHTTP(t, 200, "DELETE", "http://"+s.Addr()+"/v1/admin/conversations/c-rm/participants/bea", testenv.Token(t, "boss", "acme", "admin"), nil)
	bea.Wait("room:left", time.Second, func(e testenv.Event) bool { return e.Field("reason") != "" })
	bea.Emit("sendMessage", text("post", "c-rm", "still?"))
	if ev := bea.Wait("message:failed", time.Second, byID("post")); ev.Field("code") != "not_member" {
		t.Fatalf("removed participant send: %s", ev.Data)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refused after %v", d)
	}
	// A new connection is refused too (the Redis cache was invalidated).
	again := testenv.Dial(t, s.Addr(), testenv.Token(t, "bea", "acme"), "")
	again.Emit("joinRoom", map[string]any{"conversation_id": "c-rm"})
	if c := code(again, "room:error"); c != "not_member" {
		t.Fatalf("removed participant join: %s", c)
	}
}

func TestPresenceAndTyping(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	roleConversation(t, s.Addr(), "acme", "c-pr", staff)
	ann := join(t, s, "acme", "ann", "c-pr")
	bea := join(t, s, "acme", "bea", "c-pr")
	ann.Wait("room:member_joined", 5*time.Second, func(e testenv.Event) bool { return e.Field("user_id") == "bea" })
	bea.Emit("typing", map[string]any{"conversation_id": "c-pr"})
	bea.Emit("typing", map[string]any{"conversation_id": "c-pr"})
	ann.Wait("room:typing", 5*time.Second, func(e testenv.Event) bool { return e.Field("user_id") == "bea" })
	time.Sleep(300 * time.Millisecond)
	if n := ann.Count("room:typing"); n != 1 {
		t.Fatalf("%d typing events relayed for two within a second, want 1", n)
	}
	if bea.Count("room:typing") != 0 {
		t.Fatal("typing echoed to the typist")
	}
	bea.Emit("leaveRoom", map[string]any{"conversation_id": "c-pr"})
	ann.Wait("room:member_left", 5*time.Second, func(e testenv.Event) bool { return e.Field("user_id") == "bea" })
}

var _ = fmt.Sprintf
var _ *server.Server
