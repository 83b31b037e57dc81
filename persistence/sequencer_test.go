package persistence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
