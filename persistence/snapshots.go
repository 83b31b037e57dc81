package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Snapshots stores room snapshots in Redis, each kept TTL after its last
// write so that Redis cleans up inactive rooms.
type Snapshots struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// NewSnapshots returns a snapshot store keeping snapshots for ttl.
func NewSnapshots(rdb redis.UniversalClient, ttl time.Duration) *Snapshots {
	return &Snapshots{rdb: rdb, ttl: ttl}
}

var saveScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
`)

// Save writes a room's snapshot if lease is still the room's lease;
// ErrFenced otherwise, and nothing is written.
func (s *Snapshots) Save(ctx context.Context, tenant, conv string, lease *Lease, data []byte) error {
	n, err := saveScript.Run(ctx, s.rdb, []string{RoomSnapshotKey(tenant, conv), LeaseKey(tenant, conv)}, lease.Token, data, int(s.ttl/time.Second)).Int()
	if err != nil {
		return fmt.Errorf("save room snapshot: %w", err)
	}
	if n != 1 {
		return ErrFenced
	}
	return nil
}

// Load reads a room's snapshot; ErrNotFound when there is none.
func (s *Snapshots) Load(ctx context.Context, tenant, conv string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, RoomSnapshotKey(tenant, conv)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load room snapshot: %w", err)
	}
	return b, nil
}

// Delete removes a room's snapshot.
func (s *Snapshots) Delete(ctx context.Context, tenant, conv string) error {
	return s.rdb.Del(ctx, RoomSnapshotKey(tenant, conv)).Err()
}
