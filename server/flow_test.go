package server_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/caasd/caasd/internal/testenv"
)

// mongoCount counts stored messages matching filter, through mongo-driver.
func mongoCount(t testing.TB, env *testenv.Env, filter bson.D) int64 {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + env.MongoAddr + "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	n, err := client.Database("caas").Collection("messages").CountDocuments(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// storedIDs counts, per message id, the stored messages of conv.
func storedIDs(t testing.TB, env *testenv.Env, conv string) map[string]int {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + env.MongoAddr + "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	cur, err := client.Database("caas").Collection("messages").Find(context.Background(),
		bson.D{{Key: "tenant_id", Value: "acme"}, {Key: "conversation_id", Value: conv}},
		options.Find().SetProjection(bson.D{{Key: "message_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		MessageID string `bson:"message_id"`
	}
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, d := range docs {
		out[d.MessageID]++
	}
	return out
}

// waitStoredOnce waits until every id is stored exactly once in conv.
func waitStoredOnce(t testing.TB, env *testenv.Env, conv string, ids []string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		stored := storedIDs(t, env, conv)
		missing := 0
		for _, id := range ids {
			switch stored[id] {
			case 1:
			case 0:
				missing++
			default:
				t.Fatalf("%s stored %d times", id, stored[id])
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted messages not stored after %v", missing, len(ids), d)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestMessageFlowEndToEnd(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-1", "alice", "bob")

	alice1 := join(t, s, "acme", "alice", "conv-1")
	alice2 := join(t, s, "acme", "alice", "conv-1")
	bob := join(t, s, "acme", "bob", "conv-1")

	alice1.Emit("sendMessage", text("m-1", "conv-1", "hello bob"))
	acc := alice1.Wait("message:accepted", 10*time.Second, byID("m-1"))
	if acc.Field("seq") != "1" || acc.Field("conversation_id") != "conv-1" {
		t.Fatalf("accepted = %s, want seq 1 in conv-1", acc.Data)
	}
	per := alice1.Wait("message:persisted", 10*time.Second, byID("m-1"))
	if per.Field("seq") != "1" || per.Field("persisted_at") == "" {
		t.Fatalf("persisted = %s", per.Data)
	}
	for name, c := range map[string]*testenv.Client{"bob": bob, "alice's other connection": alice2, "alice": alice1} {
		ev := c.Wait("message:new", 5*time.Second, byID("m-1"))
		if ev.Field("sender_id") != "alice" || ev.Field("tenant_id") != "acme" || ev.Field("seq") != "1" || ev.Field("created_at") == "" {
			t.Fatalf("%s got message:new %s", name, ev.Data)
		}
	}
	if a, p := alice1.Position("message:accepted", byID("m-1")), alice1.Position("message:persisted", byID("m-1")); a < 0 || p < a {
		t.Fatalf("message:accepted at %d, message:persisted at %d: accepted must come first", a, p)
	}
	if n := mongoCount(t, env, bson.D{{Key: "tenant_id", Value: "acme"}, {Key: "message_id", Value: "m-1"}}); n != 1 {
		t.Fatalf("m-1 stored %d times, want 1", n)
	}
	if bob.Count("message:accepted")+bob.Count("message:persisted") != 0 {
		t.Fatal("bob got the sender's confirmations")
	}
	// The conversation's last_message_at follows (within a touch interval).
	waitLastMessageAt(t, env, "acme/conv-1", persistedAt(t, per))
}

// TestLastMessageAtFollowsEachConversation: conversations whose messages
// are persisted together are touched together, each to its own newest
// message, and one without messages is left alone.
func TestLastMessageAtFollowsEachConversation(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	convs := []string{"conv-a", "conv-b", "conv-c"}
	for _, c := range append(convs, "conv-quiet") {
		conversation(t, s, "acme", c, "alice", "bob")
	}
	alice := dialUser(t, s, "acme", "alice")
	for _, c := range convs {
		alice.Emit("joinRoom", map[string]any{"conversation_id": c})
		alice.Wait("room:joined", 10*time.Second, field("conversation_id", c))
	}
	for round := range 2 {
		for _, c := range convs {
			alice.Emit("sendMessage", text(fmt.Sprintf("%s-%d", c, round), c, fmt.Sprintf("hi %s, round %d", c, round)))
		}
		for _, c := range convs {
			per := alice.Wait("message:persisted", 10*time.Second, byID(fmt.Sprintf("%s-%d", c, round)))
			waitLastMessageAt(t, env, "acme/"+c, persistedAt(t, per))
		}
	}
	if at := lastMessageAt(t, env, "acme/conv-quiet"); !at.IsZero() {
		t.Fatalf("conv-quiet has last_message_at %v without a message", at)
	}
}

func persistedAt(t testing.TB, per testenv.Event) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, per.Field("persisted_at"))
	if err != nil {
		t.Fatalf("persisted_at of %s: %v", per.Data, err)
	}
	return at.Truncate(time.Millisecond)
}

// lastMessageAt reads a conversation's last_message_at (zero if unset).
func lastMessageAt(t testing.TB, env *testenv.Env, id string) time.Time {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + env.MongoAddr + "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	var conv struct {
		LastMessageAt time.Time `bson:"last_message_at"`
	}
	if err := client.Database("caas").Collection("conversations").FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&conv); err != nil {
		t.Fatalf("conversation %s: %v", id, err)
	}
	return conv.LastMessageAt
}

// waitLastMessageAt waits (a few touch intervals at most) until the
// conversation's last_message_at is at least atLeast.
func waitLastMessageAt(t testing.TB, env *testenv.Env, id string, atLeast time.Time) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		at := lastMessageAt(t, env, id)
		if !at.Before(atLeast) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last_message_at %v, want at least %v", id, at, atLeast)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDuplicateMessageStoredOnceConfirmedEachTime(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-dup", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-dup")
	bob := join(t, s, "acme", "bob", "conv-dup")

	for i := 0; i < 3; i++ {
		alice.Emit("sendMessage", text("dup-1", "conv-dup", "once"))
		acc := alice.Wait("message:accepted", 10*time.Second, byID("dup-1"))
		per := alice.Wait("message:persisted", 15*time.Second, byID("dup-1"))
		if acc.Field("seq") != "1" || per.Field("seq") != "1" {
			t.Fatalf("send %d: accepted %s persisted %s, want seq 1", i+1, acc.Data, per.Data)
		}
	}
	if n := mongoCount(t, env, bson.D{{Key: "message_id", Value: "dup-1"}}); n != 1 {
		t.Fatalf("stored %d times, want 1", n)
	}
	// The room fanned it out once.
	time.Sleep(200 * time.Millisecond)
	if n := bob.Count("message:new"); n != 1 {
		t.Fatalf("bob got %d message:new, want 1", n)
	}
}

func TestOrderingAcrossSendersIsTheSameForEveryMember(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"RATE_LIMIT_PER_MINUTE": "10000", "RATE_LIMIT_PER_HOUR": "100000"})
	users := []string{"u0", "u1", "u2", "u3", "u4", "r0", "r1"}
	conversation(t, s, "acme", "conv-order", users...)
	clients := make(map[string]*testenv.Client)
	for _, u := range users {
		clients[u] = join(t, s, "acme", u, "conv-order")
	}
	const perSender = 200
	done := make(chan struct{})
	for i := 0; i < 5; i++ {
		c := clients["u"+strconv.Itoa(i)]
		go func(i int) {
			defer func() { done <- struct{}{} }()
			for j := 0; j < perSender; j++ {
				c.Emit("sendMessage", text(testenv.Fmt("o-%d-%d", i, j), "conv-order", testenv.Fmt("msg %d from %d", j, i)))
			}
		}(i)
	}
	for i := 0; i < 5; i++ {
		<-done
	}
	const total = 5 * perSender
	deadline := time.Now().Add(60 * time.Second)
	var ref []string
	for _, u := range users {
		c := clients[u]
		for c.Count("message:new") < total && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		evs := c.All("message:new")
		if len(evs) != total {
			t.Fatalf("%s got %d messages, want %d", u, len(evs), total)
		}
		ids := make([]string, len(evs))
		last := int64(0)
		perSenderLast := map[string]int{}
		for i, e := range evs {
			seq, _ := strconv.ParseInt(e.Field("seq"), 10, 64)
			if seq <= last {
				t.Fatalf("%s: seq %d after %d", u, seq, last)
			}
			last = seq
			ids[i] = e.Field("message_id")
			// each sender's own messages keep their sending order
			var si, sj int
			_, _ = fmtSscan(ids[i], &si, &sj)
			if prev, ok := perSenderLast[e.Field("sender_id")]; ok && sj <= prev {
				t.Fatalf("%s: sender %s message %d after %d", u, e.Field("sender_id"), sj, prev)
			}
			perSenderLast[e.Field("sender_id")] = sj
		}
		if ref == nil {
			ref = ids
			continue
		}
		for i := range ids {
			if ids[i] != ref[i] {
				t.Fatalf("%s sees %s at position %d, %s sees %s", u, ids[i], i, users[0], ref[i])
			}
		}
	}
}
