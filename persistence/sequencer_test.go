package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/persistence"
)

// TestRecentListKeepsItsLengthWithinAnEighthMore: the room's recent list
// on a real redis-server always holds at least the newest keep messages
// (once that many were sent), in seq order, and never more than an eighth
// more (at least 8): it is trimmed in steps, not at every message.
func TestRecentListKeepsItsLengthWithinAnEighthMore(t *testing.T) {
	for _, c := range []struct{ keep, slack int }{{64, 8}, {16, 8}, {200, 25}} {
		t.Run(fmt.Sprint(c.keep), func(t *testing.T) {
			rdb := redisClient(t)
			ctx := context.Background()
			seq := persistence.NewSequencer(rdb, time.Hour, c.keep, time.Hour)
			lease, _, err := persistence.NewLeases(rdb, time.Minute).Acquire(ctx, "t", "c", "n", false)
			if err != nil {
				t.Fatal(err)
			}
			longest := 0
			for i := 1; i <= 4*c.keep; i++ {
				b := &persistence.AssignBatch{Tenant: "t", Conv: "c", Lease: lease,
					MessageIDs: []string{fmt.Sprint("m", i)}, Bodies: [][]byte{fmt.Appendf(nil, `{"n":%d}`, i)}}
				res, errs := seq.AssignMany(ctx, []*persistence.AssignBatch{b})
				if errs[0] != nil || res[0][0].Seq != int64(i) {
					t.Fatalf("message %d: %+v %v", i, res[0], errs[0])
				}
				recent, err := seq.Recent(ctx, "t", "c", int64(i))
				if err != nil {
					t.Fatal(err)
				}
				if want := min(i, c.keep); len(recent) < want || len(recent) >= c.keep+c.slack {
					t.Fatalf("after %d messages the list holds %d, want %d up to %d", i, len(recent), want, c.keep+c.slack-1)
				}
				for k, e := range recent {
					if want := int64(i - len(recent) + 1 + k); e.Seq != want || string(e.Body) != fmt.Sprintf(`{"n":%d}`, want) {
						t.Fatalf("after %d messages entry %d is seq %d %s, want seq %d", i, k, e.Seq, e.Body, want)
					}
				}
				longest = max(longest, len(recent))
			}
			if longest != c.keep+c.slack-1 {
				t.Errorf("the list was at most %d long, want it to grow to %d between trims", longest, c.keep+c.slack-1)
			}
			if ttl := rdb.TTL(ctx, persistence.RecentKey("t", "c")).Val(); ttl <= 0 || ttl > time.Hour {
				t.Errorf("recent list TTL %v, want up to an hour", ttl)
			}
		})
	}
}

// TestAssignManyKeepsRoomsApart: the rooms of one call get the outcome they
// would get on their own: gapless seqs for the healthy rooms, ErrFenced for
// a stale lease, and an error for a room whose seq key Redis cannot
// increment, with neither of the last two costing the others a seq. It runs
// on a real redis-server and on the embedded default (miniredis's Lua).
func TestAssignManyKeepsRoomsApart(t *testing.T) {
	for _, c := range redisBackends {
		t.Run(c.name, func(t *testing.T) {
			rdb := c.rdb(t)
			ctx := context.Background()
			seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
			leases := persistence.NewLeases(rdb, time.Minute)
			batch := func(conv string, ids ...string) *persistence.AssignBatch {
				t.Helper()
				l, _, err := leases.Acquire(ctx, "t", conv, "n", false)
				if err != nil {
					t.Fatal(err)
				}
				b := &persistence.AssignBatch{Tenant: "t", Conv: conv, Lease: l, MessageIDs: ids}
				for _, id := range ids {
					b.Bodies = append(b.Bodies, []byte(`{"id":"`+id+`"}`))
				}
				return b
			}
			good1, fenced, broken, good2 := batch("a", "a1", "a2"), batch("f", "f1"), batch("b", "b1"), batch("c", "c1", "c2", "c3")
			fenced.Lease = &persistence.Lease{Token: "not-the-lease"}
			if err := rdb.HSet(ctx, persistence.SeqKey("t", "b"), "x", "1").Err(); err != nil {
				t.Fatal(err)
			}
			res, errs := seq.AssignMany(ctx, []*persistence.AssignBatch{good1, fenced, broken, good2})
			for i, want := range [][]int64{{1, 2}, nil, nil, {1, 2, 3}} {
				if want == nil {
					continue
				}
				if errs[i] != nil || len(res[i]) != len(want) {
					t.Fatalf("room %d: %+v %v, want seqs %v", i, res[i], errs[i], want)
				}
				for j, s := range want {
					if res[i][j].Seq != s || res[i][j].Dup {
						t.Fatalf("room %d message %d: %+v, want new seq %d", i, j, res[i][j], s)
					}
				}
			}
			if !errors.Is(errs[1], persistence.ErrFenced) {
				t.Errorf("stale lease: %v, want ErrFenced", errs[1])
			}
			if errs[2] == nil || errors.Is(errs[2], persistence.ErrFenced) || !strings.Contains(errs[2].Error(), "WRONGTYPE") {
				t.Errorf("seq key of the wrong type: %v, want Redis's WRONGTYPE error", errs[2])
			}
			// The refused rooms' messages were not recorded: a later call
			// with a fixed room sequences them as new.
			if err := rdb.Del(ctx, persistence.SeqKey("t", "b")).Err(); err != nil {
				t.Fatal(err)
			}
			res, errs = seq.AssignMany(ctx, []*persistence.AssignBatch{batch("b", "b1"), batch("a", "a2", "a3")})
			if errs[0] != nil || res[0][0].Seq != 1 || res[0][0].Dup {
				t.Errorf("room fixed: %+v %v, want b1 new with seq 1", res[0], errs[0])
			}
			if errs[1] != nil || !res[1][0].Dup || res[1][0].Seq != 2 || res[1][1].Dup || res[1][1].Seq != 3 {
				t.Errorf("room a again: %+v %v, want a2 seen with seq 2 and a3 new with seq 3", res[1], errs[1])
			}
			recent, err := seq.Recent(ctx, "t", "c", 10)
			if err != nil || len(recent) != 3 || string(recent[2].Body) != `{"id":"c3"}` {
				t.Errorf("room c's recent list: %+v %v", recent, err)
			}
		})
	}
}

// redisBackends are the Redis servers caasd runs on: a real redis-server
// and the embedded default (miniredis, whose Lua differs in places).
var redisBackends = []struct {
	name string
	rdb  func(testing.TB) *redis.Client
}{{"redis-server", redisClient}, {"embedded", embeddedRedisClient}}

// TestRecentListTTLIsSetAtCreationAndOnRefresh: the batch that creates a
// room's recent list sets its TTL; later batches leave it as it is unless
// they ask for a refresh.
func TestRecentListTTLIsSetAtCreationAndOnRefresh(t *testing.T) {
	for _, c := range redisBackends {
		t.Run(c.name, func(t *testing.T) {
			rdb := c.rdb(t)
			ctx := context.Background()
			seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
			lease, _, err := persistence.NewLeases(rdb, time.Minute).Acquire(ctx, "t", "c", "n", false)
			if err != nil {
				t.Fatal(err)
			}
			key := persistence.RecentKey("t", "c")
			send := func(id string, refresh bool) time.Duration {
				t.Helper()
				b := &persistence.AssignBatch{Tenant: "t", Conv: "c", Lease: lease, MessageIDs: []string{id}, Bodies: [][]byte{[]byte(`{}`)}, RefreshRecent: refresh}
				if _, errs := seq.AssignMany(ctx, []*persistence.AssignBatch{b}); errs[0] != nil {
					t.Fatal(errs[0])
				}
				return rdb.PTTL(ctx, key).Val()
			}
			if ttl := send("m1", false); ttl < 59*time.Minute || ttl > time.Hour {
				t.Fatalf("TTL %v after the batch that created the list, want about an hour", ttl)
			}
			if err := rdb.Expire(ctx, key, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if ttl := send("m2", false); ttl <= 0 || ttl > time.Minute {
				t.Errorf("TTL %v after a batch without refresh, want the minute left untouched", ttl)
			}
			if ttl := send("m3", true); ttl < 59*time.Minute {
				t.Errorf("TTL %v after a batch with refresh, want about an hour", ttl)
			}
			if n := rdb.LLen(ctx, key).Val(); n != 3 {
				t.Errorf("list holds %d messages, want 3", n)
			}
		})
	}
}

// embeddedRedisClient is a client of caasd's embedded default Redis.
func embeddedRedisClient(t testing.TB) *redis.Client {
	t.Helper()
	r, err := embedded.StartRedis("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return testenv.RedisClient(t, r.URL())
}

// TestAssignManySpreadsABigPipelineOverCalls: a pipeline of many rooms is
// sent as several script calls of at most 64 messages each (a room's batch
// whole, even when it has more), so that no call holds Redis for long,
// and every room still gets its own gapless seqs.
func TestAssignManySpreadsABigPipelineOverCalls(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
	leases := persistence.NewLeases(rdb, time.Minute)
	sizes := make([]int, 0, 121)
	for i := range 120 {
		sizes = append(sizes, 1+i%3)
	}
	sizes = append(sizes[:60], append([]int{80}, sizes[60:]...)...) // one room above the bound, mid-pipeline
	var batches []*persistence.AssignBatch
	for r, n := range sizes {
		conv := fmt.Sprint("room", r)
		l, _, err := leases.Acquire(ctx, "t", conv, "n", false)
		if err != nil {
			t.Fatal(err)
		}
		b := &persistence.AssignBatch{Tenant: "t", Conv: conv, Lease: l}
		for m := range n {
			b.MessageIDs = append(b.MessageIDs, fmt.Sprintf("%s-m%d", conv, m))
			b.Bodies = append(b.Bodies, []byte(`{}`))
		}
		batches = append(batches, b)
	}
	wantCalls, msgs := 0, 0
	for _, n := range sizes {
		if wantCalls == 0 || msgs+n > 64 && msgs > 0 {
			wantCalls, msgs = wantCalls+1, 0
		}
		msgs += n
	}
	// Redis learns the script first, so that the count is of calls by hash.
	if _, errs := seq.AssignMany(ctx, []*persistence.AssignBatch{{Tenant: "t", Conv: "warm", Lease: &persistence.Lease{}}}); errs[0] == nil {
		t.Fatal("a room without a lease was not fenced")
	}
	before := scriptCalls(t, rdb)
	res, errs := seq.AssignMany(ctx, batches)
	if got := scriptCalls(t, rdb) - before; got != int64(wantCalls) {
		t.Errorf("%d script calls for %d rooms, want %d", got, len(sizes), wantCalls)
	}
	for r, n := range sizes {
		if errs[r] != nil || len(res[r]) != n {
			t.Fatalf("room %d: %+v %v, want %d seqs", r, res[r], errs[r], n)
		}
		for m, a := range res[r] {
			if a.Seq != int64(m+1) || a.Dup {
				t.Fatalf("room %d message %d: %+v, want new seq %d", r, m, a, m+1)
			}
		}
	}
}

// scriptCalls is how many EVAL and EVALSHA calls Redis has run.
func scriptCalls(t testing.TB, rdb *redis.Client) int64 {
	t.Helper()
	return commandCalls(t, rdb, "eval") + commandCalls(t, rdb, "evalsha")
}

// commandCalls is how many calls of cmd Redis has run (INFO commandstats).
func commandCalls(t testing.TB, rdb *redis.Client, cmd string) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			calls, _, _ := strings.Cut(rest, ",")
			var n int64
			if _, err := fmt.Sscan(calls, &n); err != nil {
				t.Fatalf("commandstats %q: %v", line, err)
			}
			return n
		}
	}
	return 0
}
