package embedded

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestEmbeddedRedisExpiresKeys: a key with a TTL is gone once its TTL has
// run out on the wall clock (miniredis alone never expires it), and a key
// without one stays.
func TestEmbeddedRedisExpiresKeys(t *testing.T) {
	r, err := startRedis(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	opt, err := redis.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	for i := range 1000 {
		if err := c.Set(ctx, fmt.Sprint("short-", i), "v", 300*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c.Set(ctx, "long", "v", time.Hour)
	c.Set(ctx, "kept", "v", 0)
	if n := c.Exists(ctx, "short-0", "short-999").Val(); n != 2 {
		t.Fatalf("%d of the short-lived keys exist at once, want 2", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.DBSize(ctx).Val() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d keys left 5 s after their 300 ms TTLs, want the two without a short TTL (short-0 TTL %v)",
				c.DBSize(ctx).Val(), c.PTTL(ctx, "short-0").Val())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ttl := c.PTTL(ctx, "long").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("the hour-long key has a TTL of %v", ttl)
	}
	if _, err := c.Get(ctx, "kept").Result(); errors.Is(err, redis.Nil) {
		t.Error("the key without a TTL expired")
	}
}
