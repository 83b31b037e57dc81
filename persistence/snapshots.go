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
	// saves bounds the saves in flight: hundreds of rooms saving at once
	// would hold every pooled Redis connection, and the sequencer's round
	// trips, which every message waits for, would queue behind them.
	saves chan struct{}
}

// maxSavesInFlight bounds concurrent snapshot saves of one node.
const maxSavesInFlight = 2

// NewSnapshots returns a snapshot store keeping snapshots for ttl.
func NewSnapshots(rdb redis.UniversalClient, ttl time.Duration) *Snapshots {
	return &Snapshots{rdb: rdb, ttl: ttl, saves: make(chan struct{}, maxSavesInFlight)}
}

var saveScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
`)

// Save writes a room's snapshot if lease is still the room's lease;
// ErrFenced otherwise, and nothing is written.
func (s *Snapshots) Save(ctx context.Context, tenant, conv string, lease *Lease, data []byte) error {
	select {
	case s.saves <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("save room snapshot: %w", ctx.Err())
	}
	defer func() { <-s.saves }()
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
