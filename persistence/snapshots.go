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

// Save writes a room's snapshot.
func (s *Snapshots) Save(ctx context.Context, tenant, conv string, data []byte) error {
	if err := s.rdb.Set(ctx, RoomSnapshotKey(tenant, conv), data, s.ttl).Err(); err != nil {
		return fmt.Errorf("save room snapshot: %w", err)
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
