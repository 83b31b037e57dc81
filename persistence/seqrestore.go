package persistence

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// SeqScan calls yield with the tenant, conversation and seq of every
// stored message, in any order, and stops at yield's first error.
type SeqScan func(ctx context.Context, yield func(tenant, conv string, seq int64) error) error

// RestoreStats is what one seq restore did.
type RestoreStats struct {
	// Ran is false when the counters were complete already, or another
	// node was restoring them.
	Ran bool
	// Messages is how many stored messages the scan read.
	Messages int
	// Raised is how many counters were set: missing, or below the
	// highest stored seq of their conversation.
	Raised int
}

const (
	// restoreChunk bounds the conversations gathered between two calls to
	// Redis, and so the restore's memory.
	restoreChunk = 256
	// restoreFlushEvery is how long the restore gathers at most before it
	// stages what it has; each call renews the hold, so a slow scan of a
	// few big conversations keeps it.
	restoreFlushEvery = 2 * time.Second
	// restoreHold is how long the hold (and the staged floors) outlive the
	// restore's last call: should the node die mid-restore, another takes
	// over after it.
	restoreHold = 2 * time.Minute
)

// restoreStageScript keeps, in the restore's staging hash, the highest
// floor seen of each counter, if the caller still holds the restore.
// Floors are staged, not set: a counter set from part of the scan would
// be taken as it is by a room activating meanwhile. KEYS[1] the hold,
// KEYS[2] the staging hash; ARGV[1] the holder's token, ARGV[2] the hold
// in ms, then pairs of seq key and floor. Answers -1 when the hold is not
// the caller's.
var restoreStageScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 3, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[i]))
  if cur == nil or cur < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 0
`)

// restoreRaiseScript raises counters to their staged floors, if the
// caller still holds the restore, and keeps the hold and the staging hash.
// KEYS[1] the hold, KEYS[2] the staging hash, then seq keys; ARGV[1] the
// holder's token, ARGV[2] the hold in ms, then one floor per seq key.
// Answers the number of counters set, or -1 when the hold is not the
// caller's.
var restoreRaiseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local raised = 0
for i = 3, #KEYS do
  local floor = tonumber(ARGV[i])
  local cur = tonumber(redis.call('GET', KEYS[i]))
  if cur == nil or cur < floor then
    redis.call('SET', KEYS[i], floor)
    raised = raised + 1
  end
end
return raised
`)

// restoreFinishScript marks the counters complete and lets the hold and
// the staging hash go, if the caller still holds the restore: the hold,
// written before the first call, being there proves Redis kept every
// write since. KEYS[1] the hold, KEYS[2] the complete mark, KEYS[3] the
// staging hash; ARGV[1] the token.
var restoreFinishScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], '1')
redis.call('DEL', KEYS[1], KEYS[3])
return 1
`)

// restoreReleaseScript lets the hold go if it is the caller's, and the
// caller's staging hash.
var restoreReleaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[2])
return 1
`)

// Restore raises every room's seq counter to at least the highest seq
// MongoDB holds for it (scan), then marks the counters complete: from then
// on a room activating without a counter is a conversation never
// sequenced, and needs no look at MongoDB. Without the mark, that look is
// a scan of every stored message on a store that indexes only _id
// (FerretDB: seconds per room at 100,000 messages). It does nothing when
// the counters are complete or another node is restoring them. Rooms of
// this node activating meanwhile wait for it (Init).
//
// The scan's highest seqs are staged in Redis (one hash field per
// conversation) and set once it is over, so no counter is ever below its
// conversation's stored seqs. A message still in Kafka when Redis lost its
// data counts only once stored: the node's scan waits for the persister
// first (WaitPersisted).
func (s *Sequencer) Restore(ctx context.Context, scan SeqScan) (RestoreStats, error) {
	var st RestoreStats
	complete, err := s.rdb.Exists(ctx, SeqCompleteKey).Result()
	if err != nil {
		return st, fmt.Errorf("seq restore: %w", err)
	}
	if complete == 1 {
		return st, nil
	}
	token := rand.Text()
	staging := seqRestoreStagingKey(token)
	held, err := s.rdb.SetNX(ctx, SeqRestoreKey, token, restoreHold).Result()
	if err != nil {
		return st, fmt.Errorf("seq restore: %w", err)
	}
	if !held {
		return st, nil
	}
	st.Ran = true
	done := s.restoreStarted()
	defer func() {
		s.restoreEnded(done)
		if err != nil {
			// A fresh context: ctx may be what ended the restore.
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = restoreReleaseScript.Run(rctx, s.rdb, []string{SeqRestoreKey, staging}, token).Err()
			cancel()
		}
	}()
	if err = s.stageFloors(ctx, scan, token, staging, &st); err != nil {
		return st, err
	}
	if err = s.raiseToStaged(ctx, token, staging, &st); err != nil {
		return st, err
	}
	ok, err := restoreFinishScript.Run(ctx, s.rdb, []string{SeqRestoreKey, SeqCompleteKey, staging}, token).Int()
	if err != nil {
		return st, fmt.Errorf("seq restore: %w", err)
	}
	if ok != 1 {
		err = ErrRestoreLost
	}
	return st, err
}

// stageFloors runs the scan, staging each conversation's highest seq.
func (s *Sequencer) stageFloors(ctx context.Context, scan SeqScan, token, staging string, st *RestoreStats) error {
	floors := make(map[string]int64, restoreChunk) // by seq key
	flushed := time.Now()
	stage := func() error {
		args := make([]any, 2, 2*len(floors)+2)
		args[0], args[1] = token, restoreHold.Milliseconds()
		for key, f := range floors {
			args = append(args, key, f)
		}
		n, err := restoreStageScript.Run(ctx, s.rdb, []string{SeqRestoreKey, staging}, args...).Int()
		if err != nil {
			return fmt.Errorf("seq restore: %w", err)
		}
		if n < 0 {
			return ErrRestoreLost
		}
		clear(floors)
		flushed = time.Now()
		return nil
	}
	err := scan(ctx, func(tenant, conv string, seq int64) error {
		st.Messages++
		key := SeqKey(tenant, conv)
		if f, ok := floors[key]; !ok || seq > f {
			floors[key] = seq
		}
		if len(floors) >= restoreChunk || time.Since(flushed) >= restoreFlushEvery {
			return stage()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return stage()
}

// raiseToStaged sets the counters to their staged floors, a chunk at a time.
func (s *Sequencer) raiseToStaged(ctx context.Context, token, staging string, st *RestoreStats) error {
	var cursor uint64
	for {
		pairs, next, err := s.rdb.HScan(ctx, staging, cursor, "", restoreChunk).Result()
		if err != nil {
			return fmt.Errorf("seq restore: %w", err)
		}
		keys := make([]string, 2, len(pairs)/2+2)
		args := make([]any, 2, len(pairs)/2+2)
		keys[0], keys[1], args[0], args[1] = SeqRestoreKey, staging, token, restoreHold.Milliseconds()
		for i := 0; i+1 < len(pairs); i += 2 {
			keys = append(keys, pairs[i])
			args = append(args, pairs[i+1])
		}
		n, err := restoreRaiseScript.Run(ctx, s.rdb, keys, args...).Int()
		if err != nil {
			return fmt.Errorf("seq restore: %w", err)
		}
		if n < 0 {
			return ErrRestoreLost
		}
		st.Raised += n
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// restoreStarted notes that this node restores; done closes when it ends.
func (s *Sequencer) restoreStarted() (done chan struct{}) {
	done = make(chan struct{})
	s.mu.Lock()
	s.restoring = done
	s.mu.Unlock()
	return done
}

func (s *Sequencer) restoreEnded(done chan struct{}) {
	s.mu.Lock()
	if s.restoring == done {
		s.restoring = nil
	}
	s.mu.Unlock()
	close(done)
}

// restoreInProgress is closed when this node's restore ends; nil if none runs.
func (s *Sequencer) restoreInProgress() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restoring
}

// SeqRestorer keeps the seq counters complete: at start and every
// interval after, it restores them if Redis lost them (Restore). A fresh
// deployment's first restore finds no message and only sets the mark.
type SeqRestorer struct {
	seq    *Sequencer
	scan   SeqScan
	every  time.Duration
	logger *slog.Logger
}

// NewSeqRestorer returns a restorer of seq's counters from scan, checking
// every interval.
func NewSeqRestorer(seq *Sequencer, scan SeqScan, every time.Duration, logger *slog.Logger) *SeqRestorer {
	return &SeqRestorer{seq: seq, scan: scan, every: every, logger: logger}
}

// Run checks and restores until ctx ends.
func (r *SeqRestorer) Run(ctx context.Context) {
	next := time.NewTimer(0)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		}
		start := time.Now()
		st, err := r.seq.Restore(ctx, r.scan)
		switch {
		case err != nil && ctx.Err() == nil:
			r.logger.Warn("seq counters not restored", "err", err, "messages_read", st.Messages)
		case err == nil && st.Ran:
			r.logger.Info("seq counters complete", "messages_read", st.Messages, "counters_raised", st.Raised,
				"took_ms", time.Since(start).Milliseconds())
		}
		next.Reset(r.every)
	}
}
