package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caasd/caasd/persistence"
)

// TestRenewAllRenewsByHash: RenewAll extends the leases still held, reports
// ErrFenced for one another activation took, and after Redis has learned
// the script sends it by hash, not its text with every lease.
func TestRenewAllRenewsByHash(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	leases := persistence.NewLeases(rdb, 2*time.Second)
	var refs []persistence.LeaseRef
	for i := range 5 {
		conv := fmt.Sprint("c", i)
		l, _, err := leases.Acquire(ctx, "t", conv, "n", false)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, persistence.LeaseRef{Tenant: "t", Conv: conv, Lease: l})
	}
	if _, _, err := persistence.NewLeases(rdb, 2*time.Second).Acquire(ctx, "t", "c3", "other", true); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if err := rdb.PExpire(ctx, persistence.LeaseKey("t", "c0"), 500*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		evalBefore, shaBefore := commandCalls(t, rdb, "eval"), commandCalls(t, rdb, "evalsha")
		errs, err := leases.RenewAll(ctx, refs)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range errs {
			if fenced := errors.Is(e, persistence.ErrFenced); fenced != (i == 3) || !fenced && e != nil {
				t.Errorf("round %d lease %d: %v", round, i, e)
			}
		}
		if ttl := rdb.PTTL(ctx, persistence.LeaseKey("t", "c0")).Val(); ttl <= time.Second {
			t.Errorf("round %d: the renewed lease has %v left, want up to 2s", round, ttl)
		}
		if round == 1 {
			if evals, shas := commandCalls(t, rdb, "eval")-evalBefore, commandCalls(t, rdb, "evalsha")-shaBefore; evals != 0 || shas != int64(len(refs)) {
				t.Errorf("second round: %d EVAL and %d EVALSHA calls, want 0 and %d", evals, shas, len(refs))
			}
		}
	}
}
