package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/persistence"
)

// storedSeq is one stored message as a SeqScan yields it.
type storedSeq struct {
	tenant, conv string
	seq          int64
}

// scanOf is a SeqScan of msgs that calls each(i) before the i-th.
func scanOf(msgs []storedSeq, each func(i int)) persistence.SeqScan {
	return func(ctx context.Context, yield func(tenant, conv string, seq int64) error) error {
		for i, m := range msgs {
			if each != nil {
				each(i)
			}
			if err := yield(m.tenant, m.conv, m.seq); err != nil {
				return err
			}
		}
		return nil
	}
}

// counter reads a seq counter; -1 when it is missing.
func counter(t testing.TB, rdb *redis.Client, tenant, conv string) int64 {
	t.Helper()
	v, err := rdb.Get(context.Background(), persistence.SeqKey(tenant, conv)).Int64()
	if errors.Is(err, redis.Nil) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func exists(t testing.TB, rdb *redis.Client, key string) bool {
	t.Helper()
	n, err := rdb.Exists(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestInitLooksAtTheStoreOnlyWithoutTheCompleteMark: a room without a
// counter gets the store's floor while Redis lacks the complete mark, and
// starts at 0 without asking the store once the mark is there; a counter
// that exists is taken as it is either way.
func TestInitLooksAtTheStoreOnlyWithoutTheCompleteMark(t *testing.T) {
	for _, c := range redisBackends {
		t.Run(c.name, func(t *testing.T) {
			rdb := c.rdb(t)
			ctx := context.Background()
			seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
			var looks atomic.Int32
			floor := func(context.Context) (int64, error) { looks.Add(1); return 7, nil }
			for _, step := range []struct {
				conv       string
				mark       bool
				want       int64
				wantLooks  int32
				wantStored int64
			}{
				{"lost", false, 7, 1, 7},
				{"lost", false, 7, 1, 7},
				{"new", true, 0, 1, 0},
				{"lost", true, 7, 1, 7},
			} {
				if step.mark {
					if err := rdb.Set(ctx, persistence.SeqCompleteKey, "1", 0).Err(); err != nil {
						t.Fatal(err)
					}
				}
				got, err := seq.Init(ctx, "t", step.conv, floor)
				if err != nil {
					t.Fatal(err)
				}
				if got != step.want || looks.Load() != step.wantLooks || counter(t, rdb, "t", step.conv) != step.wantStored {
					t.Fatalf("%s (mark %v): Init %d after %d looks, counter %d; want %d after %d, counter %d", step.conv, step.mark,
						got, looks.Load(), counter(t, rdb, "t", step.conv), step.want, step.wantLooks, step.wantStored)
				}
			}
		})
	}
}

// TestRestoreRaisesEveryCounterToTheStoredMax: a restore sets every
// missing counter, raises every lower one to the highest stored seq of its
// conversation (over several raise calls: more conversations than one
// call takes, their messages in any order), leaves higher ones, and then
// marks the counters complete and lets its hold go. A second restore finds
// them complete and does nothing.
func TestRestoreRaisesEveryCounterToTheStoredMax(t *testing.T) {
	for _, c := range redisBackends {
		t.Run(c.name, func(t *testing.T) {
			rdb := c.rdb(t)
			ctx := context.Background()
			seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
			want := map[storedSeq]int64{}
			var msgs []storedSeq
			for i := range 600 {
				conv := storedSeq{tenant: fmt.Sprint("t", i%3), conv: fmt.Sprint("c", i)}
				top := int64(1 + i%7)
				for s := int64(1); s <= top; s++ {
					msgs = append(msgs, storedSeq{conv.tenant, conv.conv, s})
				}
				want[conv] = top
			}
			rand.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
			// c10 of t1 is behind the store, c11 of t2 ahead of it.
			rdb.Set(ctx, persistence.SeqKey("t1", "c10"), 2, 0)
			rdb.Set(ctx, persistence.SeqKey("t2", "c11"), 99, 0)
			want[storedSeq{tenant: "t2", conv: "c11"}] = 99

			st, err := seq.Restore(ctx, scanOf(msgs, nil))
			if err != nil {
				t.Fatal(err)
			}
			if !st.Ran || st.Messages != len(msgs) || st.Raised != 599 {
				t.Errorf("restore %+v, want it to run over %d messages and raise 599 counters", st, len(msgs))
			}
			for conv, top := range want {
				if got := counter(t, rdb, conv.tenant, conv.conv); got != top {
					t.Fatalf("%s/%s counter %d, want %d", conv.tenant, conv.conv, got, top)
				}
			}
			if !exists(t, rdb, persistence.SeqCompleteKey) || exists(t, rdb, persistence.SeqRestoreKey) {
				t.Errorf("after the restore: mark %v, hold %v; want the mark and no hold",
					exists(t, rdb, persistence.SeqCompleteKey), exists(t, rdb, persistence.SeqRestoreKey))
			}
			again, err := seq.Restore(ctx, scanOf(msgs, func(int) { t.Error("a second restore scanned the store") }))
			if err != nil || again.Ran {
				t.Errorf("second restore: %+v, %v; want nothing done", again, err)
			}
		})
	}
}

// TestRestoreSetsNoCounterBeforeItsScanIsOver: while the scan runs, no
// counter is set, not even from the part already read (a room activating
// meanwhile, on a node not restoring, takes a counter it finds as it is);
// at the end each counter is its conversation's highest seq, however the
// scan spread its messages.
func TestRestoreSetsNoCounterBeforeItsScanIsOver(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
	msgs := []storedSeq{{"t", "a", 3}}
	for i := range 300 { // more conversations than one staging call takes
		msgs = append(msgs, storedSeq{"t", fmt.Sprint("c", i), 1})
	}
	msgs = append(msgs, storedSeq{"t", "a", 9})
	st, err := seq.Restore(ctx, scanOf(msgs, func(i int) {
		if i == len(msgs)-1 {
			if got := counter(t, rdb, "t", "a"); got != -1 {
				t.Errorf("counter of a is %d while the scan runs, want none yet", got)
			}
		}
	}))
	if err != nil || st.Raised != 301 {
		t.Fatalf("restore %+v, %v; want 301 counters raised", st, err)
	}
	if got := counter(t, rdb, "t", "a"); got != 9 {
		t.Errorf("counter of a is %d after the restore, want 9", got)
	}
	if keys := rdb.Keys(ctx, persistence.SeqRestoreKey+"*").Val(); len(keys) != 0 {
		t.Errorf("the restore left %v behind", keys)
	}
}

// TestRestoreDoesNotMarkWhatRedisLostMeanwhile: when Redis loses its data
// while a restore runs (the counters it raised went with it), the restore
// fails with ErrRestoreLost and sets no mark; the next one completes.
func TestRestoreDoesNotMarkWhatRedisLostMeanwhile(t *testing.T) {
	for _, c := range redisBackends {
		t.Run(c.name, func(t *testing.T) {
			rdb := c.rdb(t)
			ctx := context.Background()
			seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
			var msgs []storedSeq
			for i := range 300 {
				msgs = append(msgs, storedSeq{"t", fmt.Sprint("c", i), 5})
			}
			_, err := seq.Restore(ctx, scanOf(msgs, func(i int) {
				if i == 280 { // after the first raise of 256
					if err := rdb.FlushAll(ctx).Err(); err != nil {
						t.Error(err)
					}
				}
			}))
			if !errors.Is(err, persistence.ErrRestoreLost) {
				t.Fatalf("restore across a data loss: %v, want ErrRestoreLost", err)
			}
			if exists(t, rdb, persistence.SeqCompleteKey) {
				t.Fatal("the counters were marked complete though Redis lost them")
			}
			if st, err := seq.Restore(ctx, scanOf(msgs, nil)); err != nil || !st.Ran || !exists(t, rdb, persistence.SeqCompleteKey) {
				t.Fatalf("next restore: %+v, %v", st, err)
			}
			if got := counter(t, rdb, "t", "c0"); got != 5 {
				t.Errorf("c0 counter %d after the next restore, want 5", got)
			}
		})
	}
}

// TestRestoreRunsOnOneNodeAtATime: while another node holds the restore,
// a restore does nothing; once the hold is gone, it runs.
func TestRestoreRunsOnOneNodeAtATime(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
	msgs := []storedSeq{{"t", "c", 3}}
	if err := rdb.Set(ctx, persistence.SeqRestoreKey, "another-node", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	st, err := seq.Restore(ctx, scanOf(msgs, func(int) { t.Error("scanned while another node restores") }))
	if err != nil || st.Ran || exists(t, rdb, persistence.SeqCompleteKey) {
		t.Fatalf("restore beside another: %+v, %v, mark %v", st, err, exists(t, rdb, persistence.SeqCompleteKey))
	}
	rdb.Del(ctx, persistence.SeqRestoreKey)
	if st, err := seq.Restore(ctx, scanOf(msgs, nil)); err != nil || !st.Ran || counter(t, rdb, "t", "c") != 3 {
		t.Fatalf("restore once the hold is gone: %+v, %v, counter %d", st, err, counter(t, rdb, "t", "c"))
	}
}

// TestInitWaitsForItsNodesRestore: a room activating while its node
// restores the counters waits for the restore instead of looking at the
// store itself, and gets the restored counter.
func TestInitWaitsForItsNodesRestore(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
	release := make(chan struct{})
	restored := make(chan error, 1)
	scanning := make(chan struct{})
	go func() {
		_, err := seq.Restore(ctx, scanOf([]storedSeq{{"t", "a", 12}, {"t", "b", 4}}, func(i int) {
			if i == 1 {
				close(scanning)
				<-release
			}
		}))
		restored <- err
	}()
	<-scanning
	got := make(chan int64, 1)
	go func() {
		v, err := seq.Init(ctx, "t", "a", func(context.Context) (int64, error) {
			t.Error("Init looked at the store while its node restores")
			return 0, nil
		})
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	select {
	case v := <-got:
		t.Fatalf("Init answered %d before the restore ended", v)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-restored; err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != 12 {
		t.Fatalf("Init answered %d, want the restored 12", v)
	}
}

// TestRestoreFromStoredMessages: the messages collection of a real
// MongoDB-wire server (FerretDB) restores the counters of every tenant's
// conversations, each to its highest stored seq.
func TestRestoreFromStoredMessages(t *testing.T) {
	ctx := context.Background()
	dir, addr := t.TempDir(), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	store, err := embedded.StartMongo(dir, addr, embedded.Quiet(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	db, err := persistence.ConnectMongo(ctx, store.URI(), "caas")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	if err := db.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	var docs []any
	want := map[storedSeq]int64{{tenant: "acme", conv: "x"}: 3, {tenant: "acme", conv: "y"}: 2, {tenant: "other", conv: "x"}: 9}
	for conv, top := range want {
		for s := top; s >= 1; s -= 2 { // gaps: not every seq is stored
			docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("%s/%s-%d", conv.tenant, conv.conv, s)},
				{Key: "tenant_id", Value: conv.tenant}, {Key: "conversation_id", Value: conv.conv},
				{Key: "message_id", Value: fmt.Sprintf("%s-%d", conv.conv, s)}, {Key: "seq", Value: s}})
		}
	}
	if _, err := db.Collection(persistence.CollMessages).InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	rdb := redisClient(t)
	seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
	convs := persistence.NewConversations(db, rdb, time.Minute, nil)
	st, err := seq.Restore(ctx, convs.StoredSeqs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != len(docs) || st.Raised != len(want) {
		t.Errorf("restore %+v, want %d messages read and %d counters raised", st, len(docs), len(want))
	}
	for conv, top := range want {
		if got := counter(t, rdb, conv.tenant, conv.conv); got != top {
			t.Errorf("%s/%s counter %d, want %d", conv.tenant, conv.conv, got, top)
		}
	}
	if !exists(t, rdb, persistence.SeqCompleteKey) {
		t.Error("no complete mark after the restore")
	}
}
