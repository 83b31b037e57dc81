package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/caasd/caasd/internal/config"
	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/server"
	"github.com/caasd/caasd/transport"
)

type roomView struct {
	LastSeq int64 `json:"last_seq"`
	Bans    []struct {
		UserID string     `json:"user_id"`
		Until  *time.Time `json:"until"`
	} `json:"bans"`
	Mutes []struct {
		UserID string     `json:"user_id"`
		Until  *time.Time `json:"until"`
	} `json:"mutes"`
}

func viewRoom(t *testing.T, addr, conv string) roomView {
	t.Helper()
	b := testenv.MustHTTP(t, 200, "GET", "http://"+addr+"/v1/admin/rooms/"+conv, testenv.Token(t, "boss", "acme", "admin"), nil)
	var v roomView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func joinAt(t *testing.T, addr, user, conv string) *testenv.Client {
	t.Helper()
	c := testenv.Dial(t, addr, testenv.Token(t, user, "acme"), "")
	c.Emit("joinRoom", map[string]any{"conversation_id": conv})
	return c
}

func TestRoomStateSurvivesSIGKILL(t *testing.T) {
	env := testenv.Start(t)
	procEnv := env.ProcEnv(map[string]string{"LOG_LEVEL": "warn"})
	p1 := testenv.StartProc(t, procEnv)
	roleConversation(t, p1.Addr, "acme", "c-rec", staff)
	mona := joinAt(t, p1.Addr, "mona", "c-rec")
	mona.Wait("room:joined", 10*time.Second, nil)
	olga := joinAt(t, p1.Addr, "olga", "c-rec")
	olga.Wait("room:joined", 10*time.Second, nil)

	mona.Emit("room:ban", mod("c-rec", "ann", 0))
	mona.Emit("room:ban", mod("c-rec", "cid", 2))
	mona.Emit("room:mute", mod("c-rec", "bea", 60))
	for i := 0; i < 3; i++ {
		mona.Wait("room:moderated", 5*time.Second, nil)
	}
	for i := 1; i <= 3; i++ {
		id := testenv.Fmt("rec-%d", i)
		olga.Emit("sendMessage", text(id, "c-rec", id))
		if ev := olga.Wait("message:accepted", 5*time.Second, byID(id)); ev.Field("seq") != testenv.Fmt("%d", i) {
			t.Fatalf("seq before the kill: %s", ev.Data)
		}
	}
	before := viewRoom(t, p1.Addr, "c-rec")
	if len(before.Mutes) != 1 || before.Mutes[0].Until == nil {
		t.Fatalf("mutes before: %+v", before.Mutes)
	}
	time.Sleep(600 * time.Millisecond) // a snapshot is written within 200 ms of a change
	p1.Kill()
	time.Sleep(2500 * time.Millisecond) // cid's 2-second ban ends while caasd is down

	p2 := testenv.StartProc(t, procEnv)
	ann := joinAt(t, p2.Addr, "ann", "c-rec")
	if c := code(ann, "room:error"); c != "banned" {
		t.Fatalf("permanent ban after restart: %s", c)
	}
	cid := joinAt(t, p2.Addr, "cid", "c-rec")
	cid.Wait("room:joined", 10*time.Second, nil)
	bea := joinAt(t, p2.Addr, "bea", "c-rec")
	bea.Wait("room:joined", 10*time.Second, nil)
	bea.Emit("sendMessage", text("bea-1", "c-rec", "muted?"))
	if ev := bea.Wait("message:failed", 5*time.Second, byID("bea-1")); ev.Field("code") != "muted" {
		t.Fatalf("mute after restart: %s", ev.Data)
	}
	after := viewRoom(t, p2.Addr, "c-rec")
	if len(after.Mutes) != 1 || !after.Mutes[0].Until.Equal(*before.Mutes[0].Until) {
		t.Fatalf("mute end moved: before %+v after %+v", before.Mutes, after.Mutes)
	}
	if len(after.Bans) != 1 || after.Bans[0].UserID != "ann" {
		t.Fatalf("bans after restart: %+v", after.Bans)
	}
	mona2 := joinAt(t, p2.Addr, "mona", "c-rec")
	if ev := mona2.Wait("room:joined", 10*time.Second, nil); ev.Field("role") != "moderator" || ev.Field("last_seq") != "3" {
		t.Fatalf("role and seq after restart: %s", ev.Data)
	}
	olga2 := joinAt(t, p2.Addr, "olga", "c-rec")
	olga2.Wait("room:joined", 10*time.Second, nil)
	olga2.Emit("sendMessage", text("rec-4", "c-rec", "after the restart"))
	if ev := olga2.Wait("message:accepted", 10*time.Second, byID("rec-4")); ev.Field("seq") != "4" {
		t.Fatalf("the sequence did not continue: %s", ev.Data)
	}
}

func TestModerationAuditTrailAndSnapshotTTL(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"ROOM_STATE_TTL_HOURS": "2"})
	roleConversation(t, s.Addr(), "acme", "c-aud", staff)
	mona := join(t, s, "acme", "mona", "c-aud")
	join(t, s, "acme", "ann", "c-aud")
	for _, ev := range []string{"room:kick", "room:ban", "room:unban", "room:mute", "room:unmute"} {
		mona.Emit(ev, mod("c-aud", "ann", 30))
		mona.Wait("room:moderated", 5*time.Second, nil)
	}
	// MongoDB moderation_actions, through mongo-driver.
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + env.MongoAddr + "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	cur, err := client.Database("caas").Collection("moderation_actions").Find(context.Background(),
		bson.D{{Key: "tenant_id", Value: "acme"}, {Key: "conversation_id", Value: "c-aud"}}, options.Find().SetSort(bson.D{{Key: "at", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	want := []string{"kick", "ban", "unban", "mute", "unmute"}
	if len(docs) != len(want) {
		t.Fatalf("%d actions stored, want %d", len(docs), len(want))
	}
	for i, d := range docs {
		if d["action"] != want[i] || d["actor_id"] != "mona" || d["target_id"] != "ann" || d["reason"] != "test" || d["at"] == nil {
			t.Fatalf("action %d: %v", i, d)
		}
	}
	if docs[1]["duration_s"] == nil || docs[1]["until"] == nil {
		t.Fatalf("temporary ban without duration: %v", docs[1])
	}
	// Kafka room.moderation.events.
	recs := kafkaRecords(t, env, "room.moderation.events", 10*time.Second, len(want))
	if len(recs) != len(want) {
		t.Fatalf("%d moderation events on Kafka, want %d", len(recs), len(want))
	}
	// The admin API pages through the trail, newest first.
	url := "http://" + s.Addr() + "/v1/admin/conversations/c-aud/moderation?limit=2"
	var got []string
	next := ""
	for page := 0; page < 5; page++ {
		u := url
		if next != "" {
			u += "&before=" + next
		}
		b := testenv.MustHTTP(t, http.StatusOK, "GET", u, testenv.Token(t, "boss", "acme", "admin"), nil)
		var resp struct {
			Actions []struct {
				Action string `json:"action"`
			} `json:"actions"`
			NextBefore string `json:"next_before"`
		}
		if err := json.Unmarshal(b, &resp); err != nil {
			t.Fatal(err)
		}
		for _, a := range resp.Actions {
			got = append(got, a.Action)
		}
		if resp.NextBefore == "" {
			break
		}
		next = resp.NextBefore
	}
	if len(got) != 5 || got[0] != "unmute" || got[4] != "kick" {
		t.Fatalf("paged history %v", got)
	}
	// The room's snapshot carries the configured TTL.
	rdb := testenv.RedisClient(t, env.RedisURL)
	// Snapshots are written within 200 ms of a change.
	var ttl time.Duration
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ttl, err = rdb.TTL(context.Background(), "caasd:t:acme:room:c-aud").Result(); err != nil || ttl > 0 {
			break
		}
	}
	if err != nil || ttl < 2*time.Hour-time.Minute || ttl > 2*time.Hour {
		t.Fatalf("snapshot TTL %v (%v), want about 2h", ttl, err)
	}
}

// TestSeqContinuesAfterRedisLosesItsData: a room whose Redis seq counter
// is gone (Redis lost its data) goes on from the highest seq MongoDB
// holds, and a conversation with no message starts at 1. The node that
// starts on the emptied Redis with ROOM_SEQ_RESTORE restores the counters
// from MongoDB before any room asks, and marks them complete.
func TestSeqContinuesAfterRedisLosesItsData(t *testing.T) {
	env := testenv.Start(t)
	s1 := node(t, env, nil)
	conversation(t, s1, "acme", "conv-lost", "alice", "bob")
	conversation(t, s1, "acme", "conv-fresh", "alice", "bob")
	persistSeqs(t, join(t, s1, "acme", "alice", "conv-lost"), "conv-lost", "lost", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s1.Close(ctx, 1001)

	s2 := restoredNode(t, env, "acme", "conv-lost", 3)
	acceptedSeqs(t, s2, []nextSeq{{"conv-lost", "lost-4", "4"}, {"conv-fresh", "fresh-1", "1"}})
}

// TestEmbeddedDefaultKeepsSeqsAcrossARestart: caasd on its embedded
// default (every service in-process) restarted on its data directory goes
// on after its stored seqs, and a conversation without messages starts at
// 1. After a graceful stop the embedded Redis comes back as it was saved
// (no restore runs, and a resend of a stored message is answered from its
// kept status); after a crash (no save) the counters are restored from
// the stored messages in one pass.
func TestEmbeddedDefaultKeepsSeqsAcrossARestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		crashed bool
	}{{"graceful", false}, {"after a crash", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.TempDir(t)
			var first testenv.SyncBuffer
			s1 := embeddedNode(t, dir, &first)
			conversation(t, s1, "acme", "conv-kept", "alice", "bob")
			conversation(t, s1, "acme", "conv-quiet", "alice", "bob")
			alice := join(t, s1, "acme", "alice", "conv-kept")
			persistSeqs(t, alice, "conv-kept", "kept", 3)
			alice.Close()
			stopNode(s1)
			saved := filepath.Join(dir, "redis", "dump.jsonl")
			if _, err := os.Stat(saved); err != nil {
				t.Fatalf("the embedded Redis was not saved at the stop: %v", err)
			}
			if tc.crashed {
				if err := os.Remove(saved); err != nil { // as if the process had been killed
					t.Fatal(err)
				}
			}

			var second testenv.SyncBuffer
			s2 := embeddedNode(t, dir, &second)
			defer stopNode(s2)
			restored := `"msg":"seq counters complete","component":"seq","messages_read":3,"counters_raised":1`
			if tc.crashed {
				for deadline := time.Now().Add(10 * time.Second); !strings.Contains(second.String(), restored); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("no restore of the 3 stored messages after the restart:\n%.3000s", second.String())
					}
				}
			} else {
				c := join(t, s2, "acme", "alice", "conv-kept")
				c.Emit("sendMessage", text("kept-3", "conv-kept", "sent again"))
				if per := c.Wait("message:persisted", 15*time.Second, byID("kept-3")); per.Field("seq") != "3" {
					t.Fatalf("the resend of kept-3 was answered %s, want its seq 3", per.Data)
				}
				c.Close()
				if strings.Contains(second.String(), "seq counters complete") {
					t.Errorf("a restore ran though the embedded Redis came back:\n%.3000s", second.String())
				}
			}
			acceptedSeqs(t, s2, []nextSeq{{"conv-kept", "kept-4", "4"}, {"conv-quiet", "quiet-1", "1"}})
		})
	}
}

// embeddedNode starts caasd on its embedded default in dir, logging to logs.
func embeddedNode(t testing.TB, dir string, logs *testenv.SyncBuffer) *server.Server {
	t.Helper()
	cfg, err := config.FromEnv(func(k string) string {
		return map[string]string{"HTTP_ADDR": "127.0.0.1:0", "JWT_SECRET": testenv.JWTSecret, "DATA_DIR": dir, "KAFKA_PARTITIONS": "2"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := server.Start(ctx, cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatalf("start caasd: %v", err)
	}
	return s
}

// stopNode drains s.
func stopNode(s *server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.Close(ctx, transport.CloseGoingAway)
}

// persistSeqs sends n messages to conv through c, ids prefix-1 to
// prefix-n, and waits for each to be persisted with seq 1 to n.
func persistSeqs(t testing.TB, c *testenv.Client, conv, prefix string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		id := testenv.Fmt("%s-%d", prefix, i)
		c.Emit("sendMessage", text(id, conv, "sequenced"))
		if per := c.Wait("message:persisted", 15*time.Second, byID(id)); per.Field("seq") != testenv.Fmt("%d", i) {
			t.Fatalf("%s persisted as %s", id, per.Data)
		}
	}
}

// nextSeq is a message and the seq it must be accepted with.
type nextSeq struct{ conv, id, seq string }

// acceptedSeqs sends each message as alice of acme, joined to its
// conversation on s, and checks the seq it is accepted with.
func acceptedSeqs(t testing.TB, s *server.Server, msgs []nextSeq) {
	t.Helper()
	for _, m := range msgs {
		c := join(t, s, "acme", "alice", m.conv)
		c.Emit("sendMessage", text(m.id, m.conv, "after"))
		if acc := c.Wait("message:accepted", 15*time.Second, byID(m.id)); acc.Field("seq") != m.seq {
			t.Fatalf("%s: accepted %s, want seq %s", m.conv, acc.Data, m.seq)
		}
		c.Close()
	}
}

// TestSeqRestoreWaitsForWhatKafkaStillHolds: messages accepted (in Kafka)
// but not yet stored when Redis lost its data are counted by the restore:
// it waits for the persister to store them before it reads the stored
// seqs, so the room goes on after them instead of giving their seqs again.
func TestSeqRestoreWaitsForWhatKafkaStillHolds(t *testing.T) {
	env := testenv.Start(t)
	s1 := node(t, env, map[string]string{"PERSISTER_ENABLED": "false"})
	conversation(t, s1, "acme", "conv-tail", "alice", "bob")
	alice := join(t, s1, "acme", "alice", "conv-tail")
	for i := 1; i <= 3; i++ {
		id := testenv.Fmt("tail-%d", i)
		alice.Emit("sendMessage", text(id, "conv-tail", "accepted, not yet stored"))
		if acc := alice.Wait("message:accepted", 15*time.Second, byID(id)); acc.Field("seq") != testenv.Fmt("%d", i) {
			t.Fatalf("%s accepted as %s", id, acc.Data)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s1.Close(ctx, 1001)
	s2 := restoredNode(t, env, "acme", "conv-tail", 3)
	acceptedSeqs(t, s2, []nextSeq{{"conv-tail", "tail-4", "4"}})
}

// restoredNode empties env's Redis, as a Redis that lost its data, starts
// a node with ROOM_SEQ_RESTORE on it, waits for the node to mark the seq
// counters complete, and checks that it restored conv's counter to want.
func restoredNode(t testing.TB, env *testenv.Env, tenant, conv string, want int64) *server.Server {
	t.Helper()
	rdb := testenv.RedisClient(t, env.RedisURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s := node(t, env, map[string]string{"ROOM_SEQ_RESTORE": "true"})
	for rdb.Exists(ctx, persistence.SeqCompleteKey).Val() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the new node did not mark the seq counters complete")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v, err := rdb.Get(ctx, persistence.SeqKey(tenant, conv)).Int64(); err != nil || v != want {
		t.Fatalf("%s counter after the restore: %d, %v; want %d", conv, v, err, want)
	}
	return s
}
