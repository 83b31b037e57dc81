package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/persistence"
)

// TestSnapshotSavesOfManyRoomsAllLand saves 600 rooms at once, more than
// one pipeline holds and many script calls, against a real redis-server:
// every save lands, rooms whose leases went elsewhere are refused and keep
// nothing, and a room saved twice keeps the later save.
func TestSnapshotSavesOfManyRoomsAllLand(t *testing.T) {
	rdb := redisClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leases := persistence.NewLeases(rdb, 30*time.Second)
	snaps := persistence.NewSnapshots(rdb, time.Hour)

	const rooms = 600
	held := make([]*persistence.Lease, rooms)
	for i := range rooms {
		l, _, err := leases.Acquire(ctx, "t1", fmt.Sprint("c", i), "node-a", false)
		if err != nil || l == nil {
			t.Fatalf("lease %d: %v", i, err)
		}
		held[i] = l
	}
	// Rooms 0's and 333's leases move to another node: their saves must
	// be fenced, wherever they land among the script calls.
	fenced := map[int]bool{0: true, 333: true}
	for i := range fenced {
		if _, _, err := leases.Acquire(ctx, "t1", fmt.Sprint("c", i), "node-b", true); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, rooms)
	for i := range rooms {
		wg.Go(func() {
			errs[i] = snaps.Save(ctx, "t1", fmt.Sprint("c", i), held[i], []byte(fmt.Sprint("v1-", i)))
		})
	}
	wg.Wait()
	for i := range fenced {
		if !errors.Is(errs[i], persistence.ErrFenced) {
			t.Errorf("room %d: save under a lost lease: %v, want ErrFenced", i, errs[i])
		}
		if _, err := snaps.Load(ctx, "t1", fmt.Sprint("c", i)); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("fenced room %d has a snapshot: %v", i, err)
		}
	}
	for i := range rooms {
		if fenced[i] {
			continue
		}
		if errs[i] != nil {
			t.Fatalf("room %d: %v", i, errs[i])
		}
		b, err := snaps.Load(ctx, "t1", fmt.Sprint("c", i))
		if err != nil || string(b) != fmt.Sprint("v1-", i) {
			t.Fatalf("room %d: %q, %v", i, b, err)
		}
	}
	if err := snaps.Save(ctx, "t1", "c7", held[7], []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if b, _ := snaps.Load(ctx, "t1", "c7"); string(b) != "v2" {
		t.Errorf("second save: %q", b)
	}
	if ttl := rdb.TTL(ctx, persistence.RoomSnapshotKey("t1", "c7")).Val(); ttl < 59*time.Minute {
		t.Errorf("snapshot TTL %v, want about an hour", ttl)
	}
}

// redisClient is a client of a new real redis-server, closed at the end of
// the test.
func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	return testenv.RedisClient(t, testenv.StartRedis(t))
}

// TestSnapshotSaveGivesUpWithItsContext: a caller whose context ends is
// told so even while Redis does not answer.
func TestSnapshotSaveGivesUpWithItsContext(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), MaxRetries: -1})
	defer rdb.Close()
	snaps := persistence.NewSnapshots(rdb, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := snaps.Save(ctx, "t1", "c1", &persistence.Lease{Token: "x"}, []byte("v"))
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("save without Redis: %v after %v", err, time.Since(start))
	}
}

// TestSnapshotSaveGivenUpIsNotWritten: a save whose caller has given up
// before it is written is dropped, so a stopped room leaves no late write.
func TestSnapshotSaveGivenUpIsNotWritten(t *testing.T) {
	rdb := redisClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leases := persistence.NewLeases(rdb, 30*time.Second)
	late, _, err := leases.Acquire(ctx, "t1", "c2", "node-a", false)
	if err != nil {
		t.Fatal(err)
	}
	kept, _, err := leases.Acquire(ctx, "t1", "c1", "node-a", false)
	if err != nil {
		t.Fatal(err)
	}
	snaps := persistence.NewSnapshots(rdb, time.Hour)
	gone, stop := context.WithCancel(ctx)
	stop()
	for i := range 50 {
		if err := snaps.Save(gone, "t1", "c2", late, []byte(fmt.Sprint("late-", i))); !errors.Is(err, context.Canceled) {
			t.Fatalf("save %d: %v, want context.Canceled", i, err)
		}
	}
	// Saves are written in the order they came: once a later save has
	// landed, any of the given-up ones would have too.
	if err := snaps.Save(ctx, "t1", "c1", kept, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if b, err := snaps.Load(ctx, "t1", "c1"); err != nil || string(b) != "kept" {
		t.Fatalf("snapshot %q, %v", b, err)
	}
	if b, err := snaps.Load(ctx, "t1", "c2"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("a given-up save was written: %q, %v", b, err)
	}
}
