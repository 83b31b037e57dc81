package persistence

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/internal/testenv"
)

// touchingPersister is a persister with only what touches need: its
// conversations collection and Redis.
func touchingPersister(convs *Mongo, rdb redis.UniversalClient) *Persister {
	return &Persister{convs: convs.Collection(CollConversations), rdb: rdb, logger: slog.New(slog.DiscardHandler), slots: make(chan struct{}, 2)}
}

// TestParkedTouchesReachTheOtherPersisters: on a real Redis and FerretDB,
// two stopping persisters park what they could not advance, the later
// time kept for a conversation both parked; a third takes them in takes
// of the size it asks, leaves nothing parked, and advances each
// conversation to its time, never back.
func TestParkedTouchesReachTheOtherPersisters(t *testing.T) {
	ctx := context.Background()
	db, rdb := freshStore(t), testenv.RedisClient(t, testenv.StartRedis(t))
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	t3 := t2.Add(123*time.Millisecond + 456*time.Microsecond) // the store keeps milliseconds
	c1, c2, c3 := docID("acme", "c1"), docID("acme", "c2"), docID("beta", "c3")
	_, err := db.Collection(CollConversations).InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: c1}, {Key: "last_message_at", Value: t0}},
		bson.D{{Key: "_id", Value: c2}, {Key: "last_message_at", Value: t2}}, // later than what is parked for it
		bson.D{{Key: "_id", Value: c3}, {Key: "last_message_at", Value: t0}},
	})
	if err != nil {
		t.Fatal(err)
	}

	a, b := touchingPersister(db, rdb), touchingPersister(db, rdb)
	a.touch = map[string]time.Time{c1: t1, c2: t1}
	b.touch = map[string]time.Time{c1: t0, c3: t3}
	for i, p := range []*Persister{a, b} { // b's older c1 last
		if n, err := p.parkTouches(ctx); err != nil || n != 2 {
			t.Fatalf("persister %d parked %d, %v; want 2", i, n, err)
		}
		if n := p.pendingTouches(); n != 0 {
			t.Fatalf("persister %d still has %d pending after parking", i, n)
		}
	}
	if n := rdb.HLen(ctx, TouchesKey).Val(); n != 3 {
		t.Fatalf("%d conversations parked, want 3", n)
	}

	c := touchingPersister(db, rdb)
	for i, want := range []int{2, 1, 0} {
		if took, err := c.takeParkedTouches(ctx, 2); err != nil || took != want {
			t.Fatalf("take %d: %d, %v; want %d", i, took, err, want)
		}
	}
	if n := rdb.Exists(ctx, TouchesKey).Val(); n != 0 {
		t.Fatal("parked touches left after taking them all")
	}
	want := map[string]time.Time{c1: t1, c2: t1, c3: t3.Truncate(time.Millisecond)}
	if len(c.touch) != len(want) {
		t.Fatalf("took %v, want %v", c.touch, want)
	}
	for id, at := range want {
		if !c.touch[id].Equal(at) {
			t.Fatalf("took %s at %v, want %v", id, c.touch[id], at)
		}
	}

	if _, err := c.flushTouches(ctx, 0); err != nil {
		t.Fatal(err)
	}
	stored := map[string]time.Time{c1: t1, c2: t2, c3: t3.Truncate(time.Millisecond)}
	for id, at := range stored {
		var doc struct {
			At time.Time `bson:"last_message_at"`
		}
		if err := db.Collection(CollConversations).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if !doc.At.Equal(at) {
			t.Errorf("%s last_message_at %v, want %v", id, doc.At, at)
		}
	}
}

// TestStoppingPersisterParksWhatItCannotAdvance: a persister whose store
// is gone when it stops spends its last round's time, then parks every
// pending touch in Redis, where the next persister finds it.
func TestStoppingPersisterParksWhatItCannotAdvance(t *testing.T) {
	store, err := embedded.StartMongo(t.TempDir(), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), embedded.Quiet(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	db, err := ConnectMongo(context.Background(), store.URI(), "caas")
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	store.Close()
	rdb := testenv.RedisClient(t, testenv.StartRedis(t))

	p := touchingPersister(db, rdb)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	p.touch = map[string]time.Time{}
	for i := range 20 {
		p.touch[docID("acme", fmt.Sprintf("c%02d", i))] = at.Add(time.Duration(i) * time.Second)
	}
	start := time.Now()
	p.lastTouches()
	if d := time.Since(start); d > finalTouchTimeout+parkTimeout+time.Second {
		t.Fatalf("the last round took %v", d)
	}
	if n := p.pendingTouches(); n != 0 {
		t.Fatalf("%d touches still pending", n)
	}
	parked := rdb.HGetAll(context.Background(), TouchesKey).Val()
	if len(parked) != 20 {
		t.Fatalf("%d conversations parked, want 20", len(parked))
	}
	if got, want := parked[docID("acme", "c07")], fmt.Sprint(at.Add(7*time.Second).UnixMilli()); got != want {
		t.Fatalf("c07 parked at %s, want %s", got, want)
	}
}
