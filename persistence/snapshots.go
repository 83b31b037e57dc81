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
// maxSnapshotBatch saves, snapshotsPerCall to a script call, each save as
// atomic as on its own.
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

// saveScript writes the snapshots of several rooms: KEYS are pairs of
// snapshot key and lease key, ARGV[1] the TTL in seconds, then pairs of
// lease token and snapshot. A snapshot is written only while its lease is
// the token's; the answer is 1 per room written, 0 per room fenced.
var saveScript = redis.NewScript(`
local ttl = tonumber(ARGV[1])
local res = {}
for i = 1, #KEYS / 2 do
  if redis.call('GET', KEYS[2 * i]) == ARGV[2 * i] then
    redis.call('SET', KEYS[2 * i - 1], ARGV[2 * i + 1], 'EX', ttl)
    res[i] = 1
  else
    res[i] = 0
  end
end
return res
`)

// snapshotsPerCall bounds the saves of one script call: a call per save
// costs Redis a script call's fixed work each, and the embedded Redis a
// Lua state each, which under load timed saves out by the thousand.
const snapshotsPerCall = 64

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

// writeBatch runs the saves of batch in one pipeline of script calls of
// up to snapshotsPerCall saves (two pipelines the first time Redis sees
// the script) and tells each its outcome.
func (s *Snapshots) writeBatch(batch []*snapshotSave) {
	ctx, cancel := context.WithTimeout(context.Background(), snapshotWriteLimit)
	defer cancel()
	ttl := int(s.ttl / time.Second)
	cmds := runScripts(ctx, s.rdb, saveScript, callsFor(len(batch), snapshotsPerCall), func(c int) ([]string, []any) {
		part := callPart(batch, snapshotsPerCall, c)
		keys, args := make([]string, 0, 2*len(part)), make([]any, 1, 1+2*len(part))
		args[0] = ttl
		for _, sv := range part {
			keys = append(keys, sv.key, sv.leaseKey)
			args = append(args, sv.token, sv.data)
		}
		return keys, args
	})
	for c, cmd := range cmds {
		part := callPart(batch, snapshotsPerCall, c)
		got, err := cmd.Int64Slice()
		if err == nil && len(got) != len(part) {
			err = fmt.Errorf("%d answers for %d snapshots", len(got), len(part))
		}
		for i, sv := range part {
			switch {
			case err != nil:
				sv.done <- fmt.Errorf("save room snapshot: %w", err)
			case got[i] != 1:
				sv.done <- ErrFenced
			default:
				sv.done <- nil
			}
		}
	}
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
