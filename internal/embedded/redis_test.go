package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestEmbeddedRedisExpiresKeys: a key with a TTL is gone once its TTL has
// run out on the wall clock (miniredis alone never expires it), and a key
// without one stays.
func TestEmbeddedRedisExpiresKeys(t *testing.T) {
	r, err := startRedis("", 100*time.Millisecond)
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

// TestEmbeddedRedisKeepsItsDataAcrossAClose: with a directory, what the
// embedded Redis holds when closed (strings of any bytes, lists, hashes,
// TTLs less the time it was down) is there at the next start, and the
// saved file is gone once loaded, so that a start after a crash begins
// empty rather than from an older save.
func TestEmbeddedRedisKeepsItsDataAcrossAClose(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	client := func(r *Redis) *redis.Client {
		opt, err := redis.ParseURL(r.URL())
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	binary := string([]byte{0, 0xff, 0xfe, '|', 'x'})
	r1, err := StartRedis(dir)
	if err != nil {
		t.Fatal(err)
	}
	c1 := client(r1)
	c1.Set(ctx, "seq", 41, 0)
	c1.Set(ctx, "bin", binary, time.Hour)
	c1.RPush(ctx, "recent", "1|a", "2|b", "3|c")
	c1.HSet(ctx, "floors", "x", "9", "y", "4")
	c1.Set(ctx, "brief", "v", 200*time.Millisecond)
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	r2, err := StartRedis(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := os.Stat(filepath.Join(dir, dumpFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the saved file is still there after the load: %v", err)
	}
	c2 := client(r2)
	if v := c2.Get(ctx, "seq").Val(); v != "41" {
		t.Errorf("seq %q, want 41", v)
	}
	if v := c2.Get(ctx, "bin").Val(); v != binary {
		t.Errorf("bin %q, want %q", v, binary)
	}
	if ttl := c2.PTTL(ctx, "bin").Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("bin TTL %v, want about an hour", ttl)
	}
	if v := c2.LRange(ctx, "recent", 0, -1).Val(); !slices.Equal(v, []string{"1|a", "2|b", "3|c"}) {
		t.Errorf("recent %v", v)
	}
	if v := c2.HGetAll(ctx, "floors").Val(); len(v) != 2 || v["x"] != "9" || v["y"] != "4" {
		t.Errorf("floors %v", v)
	}
	if c2.Exists(ctx, "brief").Val() != 0 {
		t.Error("a key whose TTL ran out while Redis was down came back")
	}
}
