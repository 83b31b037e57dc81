package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caasd/caasd/persistence"
)

type assigned struct {
	res []persistence.Assignment
	err error
}

// TestSeqBatcher runs several rooms' assignments through one batcher on a
// real redis-server: each room gets its own gapless seqs, a message id
// seen before keeps its seq, and a stale lease is fenced without a seq.
func TestSeqBatcher(t *testing.T) {
	rdb := redisClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	seq := persistence.NewSequencer(rdb, time.Hour, 100, time.Hour)
	b := persistence.NewSeqBatcher(seq, persistence.SeqBatcherConfig{QueueLen: 64, MaxBatch: 8})
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	defer func() { cancel(); <-done }()

	leases := persistence.NewLeases(rdb, time.Minute)
	const rooms = 20
	ls := make([]*persistence.Lease, rooms)
	for i := range ls {
		var err error
		if ls[i], _, err = leases.Acquire(ctx, "t", fmt.Sprint("c", i), "n", false); err != nil {
			t.Fatal(err)
		}
	}
	submit := func(conv string, l *persistence.Lease, ids ...string) chan assigned {
		out := make(chan assigned, 1)
		bodies := make([][]byte, len(ids))
		for i := range bodies {
			bodies[i] = []byte(`{}`)
		}
		err := b.Submit(&persistence.AssignRequest{
			AssignBatch: persistence.AssignBatch{Tenant: "t", Conv: conv, Lease: l, MessageIDs: ids, Bodies: bodies},
			Done:        func(res []persistence.Assignment, err error) { out <- assigned{res, err} },
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	wait := func(c chan assigned) assigned {
		select {
		case a := <-c:
			return a
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
			return assigned{}
		}
	}
	for round := range 3 {
		chans := make([]chan assigned, rooms)
		for i := range rooms {
			chans[i] = submit(fmt.Sprint("c", i), ls[i], fmt.Sprintf("m%d-%d-a", i, round), fmt.Sprintf("m%d-%d-b", i, round))
		}
		for i, c := range chans {
			a := wait(c)
			if a.err != nil || len(a.res) != 2 || a.res[0].Seq != int64(2*round+1) || a.res[1].Seq != int64(2*round+2) || a.res[0].Dup {
				t.Fatalf("round %d room %d: %+v %v", round, i, a.res, a.err)
			}
		}
	}
	a := wait(submit("c0", ls[0], "m0-0-b", "m0-new"))
	if a.err != nil || !a.res[0].Dup || a.res[0].Seq != 2 || a.res[1].Dup || a.res[1].Seq != 7 {
		t.Fatalf("dup: %+v %v", a.res, a.err)
	}
	newer, _, err := leases.Acquire(ctx, "t", "c1", "other", true)
	if err != nil {
		t.Fatal(err)
	}
	stale, fresh := submit("c1", ls[1], "x"), submit("c1", newer, "y")
	if a := wait(stale); !errors.Is(a.err, persistence.ErrFenced) {
		t.Fatalf("stale lease: %+v %v, want ErrFenced", a.res, a.err)
	}
	if a := wait(fresh); a.err != nil || a.res[0].Seq != 7 {
		t.Fatalf("new lease: %+v %v", a.res, a.err)
	}
	cancel()
	<-done
	err = b.Submit(&persistence.AssignRequest{Done: func([]persistence.Assignment, error) {}})
	if !errors.Is(err, persistence.ErrSeqClosed) {
		t.Fatalf("submit after stop: %v, want ErrSeqClosed", err)
	}
}
