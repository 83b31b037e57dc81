package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caasd/caasd/persistence"
)

// TestRenewAllRenewsByHash: RenewAll extends the leases still held and
// reports ErrFenced for those other activations took, in either of the
// two script calls that 300 leases take (256 a call); after Redis has
// learned the script it sends it by hash, not its text.
func TestRenewAllRenewsByHash(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	leases := persistence.NewLeases(rdb, 2*time.Second)
	const n = 300
	taken := map[int]bool{3: true, 290: true} // one in each call
	var refs []persistence.LeaseRef
	for i := range n {
		conv := fmt.Sprint("c", i)
		l, _, err := leases.Acquire(ctx, "t", conv, "n", false)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, persistence.LeaseRef{Tenant: "t", Conv: conv, Lease: l})
	}
	for i := range taken {
		if _, _, err := persistence.NewLeases(rdb, 2*time.Second).Acquire(ctx, "t", fmt.Sprint("c", i), "other", true); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		for _, c := range []string{"c0", "c299"} {
			if err := rdb.PExpire(ctx, persistence.LeaseKey("t", c), 500*time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
		}
		evalBefore, shaBefore := commandCalls(t, rdb, "eval"), commandCalls(t, rdb, "evalsha")
		errs, err := leases.RenewAll(ctx, refs)
		if err != nil {
			t.Fatal(err)
		}
		if len(errs) != n {
			t.Fatalf("%d outcomes for %d leases", len(errs), n)
		}
		for i, e := range errs {
			if fenced := errors.Is(e, persistence.ErrFenced); fenced != taken[i] || !fenced && e != nil {
				t.Errorf("round %d lease %d: %v", round, i, e)
			}
		}
		for _, c := range []string{"c0", "c299"} {
			if ttl := rdb.PTTL(ctx, persistence.LeaseKey("t", c)).Val(); ttl <= time.Second {
				t.Errorf("round %d: the renewed lease of %s has %v left, want up to 2s", round, c, ttl)
			}
		}
		if round == 1 {
			if evals, shas := commandCalls(t, rdb, "eval")-evalBefore, commandCalls(t, rdb, "evalsha")-shaBefore; evals != 0 || shas != 2 {
				t.Errorf("second round: %d EVAL and %d EVALSHA calls, want 0 and 2", evals, shas)
			}
		}
	}
}
