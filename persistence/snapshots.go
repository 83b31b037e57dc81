package persistence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Snapshots stores room snapshots in Redis, each kept TTL after its last
// write so that Redis cleans up inactive rooms.
//
// Saves are written together: a node's rooms save every few seconds each
// (hundreds of rooms: a hundred saves a second), and one round trip per
// save held pooled Redis connections that the sequencer's round trips,
// which every message waits for, queued behind; bounding saves in flight
// instead made them time out under load. So a save joins a queue, and one
// writer goroutine, started when the queue fills from empty and gone when
// it is empty again, writes what waits in pipelines of up to
// maxSnapshotBatch, each save's script as atomic as on its own.
type Snapshots struct {
	rdb redis.UniversalClient
	ttl time.Duration

	slots   chan struct{} // bounds saves queued or being written
	mu      sync.Mutex
	queue   []*snapshotSave
	writing bool
}

// Bounds of snapshot writing.
const (
	maxSnapshotSaves   = 4096 // queued or being written, per node
	maxSnapshotBatch   = 256  // saves per pipeline
	snapshotWriteLimit = 5 * time.Second
)

// snapshotSave is one queued save; done gets its outcome.
type snapshotSave struct {
	ctx                  context.Context // the caller's: a save it gave up on is dropped
	key, leaseKey, token string
	data                 []byte
	done                 chan error
}

// NewSnapshots returns a snapshot store keeping snapshots for ttl.
func NewSnapshots(rdb redis.UniversalClient, ttl time.Duration) *Snapshots {
	return &Snapshots{rdb: rdb, ttl: ttl, slots: make(chan struct{}, maxSnapshotSaves)}
}

var saveScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
`)

// Save writes a room's snapshot if lease is still the room's lease;
// ErrFenced otherwise, and nothing is written. It returns once the write
// is done or ctx ends; a save whose caller gave up is dropped unless it is
// being written.
func (s *Snapshots) Save(ctx context.Context, tenant, conv string, lease *Lease, data []byte) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("save room snapshot: %w", ctx.Err())
	}
	sv := &snapshotSave{ctx: ctx, key: RoomSnapshotKey(tenant, conv), leaseKey: LeaseKey(tenant, conv), token: lease.Token, data: data, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, sv)
	start := !s.writing
	s.writing = true
	s.mu.Unlock()
	if start {
		go s.write()
	}
	select {
	case err := <-sv.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("save room snapshot: %w", ctx.Err())
	}
}

// write writes queued saves until none wait.
func (s *Snapshots) write() {
	for {
		s.mu.Lock()
		batch := s.queue
		if len(batch) > maxSnapshotBatch {
			batch = batch[:maxSnapshotBatch:maxSnapshotBatch]
			s.queue = s.queue[maxSnapshotBatch:]
		} else {
			s.queue = nil
		}
		if len(batch) == 0 {
			s.writing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		live := batch[:0:0]
		for _, sv := range batch {
			if sv.ctx.Err() != nil {
				sv.done <- fmt.Errorf("save room snapshot: %w", sv.ctx.Err())
				continue
			}
			live = append(live, sv)
		}
		if len(live) > 0 {
			s.writeBatch(live)
		}
		for range batch {
			<-s.slots
		}
	}
}

// writeBatch runs the saves of batch in one pipeline (two the first time
// Redis sees the script) and tells each its outcome.
func (s *Snapshots) writeBatch(batch []*snapshotSave) {
	ctx, cancel := context.WithTimeout(context.Background(), snapshotWriteLimit)
	defer cancel()
	ttl := int(s.ttl / time.Second)
	cmds := runScripts(ctx, s.rdb, saveScript, len(batch), func(i int) ([]string, []any) {
		sv := batch[i]
		return []string{sv.key, sv.leaseKey}, []any{sv.token, sv.data, ttl}
	})
	for i, c := range cmds {
		batch[i].done <- saveOutcome(c)
	}
}

func saveOutcome(c *redis.Cmd) error {
	n, err := c.Int()
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
