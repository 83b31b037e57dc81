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
	// Raised is how many times a counter was set, missing or below a
	// stored seq of its conversation: once per conversation, or more when
	// the scan's order spreads its messages over several raise calls.
	Raised int
}

const (
	// restoreChunk bounds the conversations gathered between two raise
	// calls, and so the restore's memory.
	restoreChunk = 256
	// restoreFlushEvery is how long the restore gathers at most before it
	// raises what it has; each raise renews the hold, so a slow scan of a
	// few big conversations keeps it.
	restoreFlushEvery = 2 * time.Second
	// restoreHold is how long the hold outlives the restore's last raise:
	// should the node die mid-restore, another takes over after it.
	restoreHold = 2 * time.Minute
)

// restoreRaiseScript raises counters, if the caller still holds the
// restore. KEYS[1] the restore key, then seq keys; ARGV[1] the holder's
// token, ARGV[2] the hold in ms, then one floor per seq key. Answers the
// number of counters set, or -1 when the hold is not the caller's.
var restoreRaiseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local raised = 0
for i = 2, #KEYS do
  local floor = tonumber(ARGV[i + 1])
  local cur = tonumber(redis.call('GET', KEYS[i]))
  if cur == nil or cur < floor then
    redis.call('SET', KEYS[i], floor)
    raised = raised + 1
  end
end
return raised
`)

// restoreFinishScript marks the counters complete and lets the hold go,
// if the caller still holds the restore: the hold, written before the
// first raise, being there proves Redis kept every raise since.
// KEYS[1] the restore key, KEYS[2] the complete mark; ARGV[1] the token.
var restoreFinishScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], '1')
redis.call('DEL', KEYS[1])
return 1
`)

// restoreReleaseScript lets the hold go if it is the caller's.
var restoreReleaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
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
// A message still in Kafka when Redis lost its data is not in MongoDB, so
// its seq is not covered; no more than with the per-room look.
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
			_ = restoreReleaseScript.Run(rctx, s.rdb, []string{SeqRestoreKey}, token).Err()
			cancel()
		}
	}()
	floors := make(map[convRef]int64, restoreChunk)
	flushed := time.Now()
	raise := func() error {
		keys := make([]string, 1, len(floors)+1)
		args := make([]any, 2, len(floors)+2)
		keys[0], args[0], args[1] = SeqRestoreKey, token, restoreHold.Milliseconds()
		for c, f := range floors {
			keys = append(keys, SeqKey(c.tenant, c.conv))
			args = append(args, f)
		}
		n, err := restoreRaiseScript.Run(ctx, s.rdb, keys, args...).Int()
		if err != nil {
			return fmt.Errorf("seq restore: %w", err)
		}
		if n < 0 {
			return ErrRestoreLost
		}
		st.Raised += n
		clear(floors)
		flushed = time.Now()
		return nil
	}
	err = scan(ctx, func(tenant, conv string, seq int64) error {
		st.Messages++
		c := convRef{tenant, conv}
		if f, ok := floors[c]; !ok || seq > f {
			floors[c] = seq
		}
		if len(floors) >= restoreChunk || time.Since(flushed) >= restoreFlushEvery {
			return raise()
		}
		return nil
	})
	if err == nil {
		err = raise()
	}
	if err != nil {
		return st, err
	}
	ok, err := restoreFinishScript.Run(ctx, s.rdb, []string{SeqRestoreKey, SeqCompleteKey}, token).Int()
	if err != nil {
		return st, fmt.Errorf("seq restore: %w", err)
	}
	if ok != 1 {
		err = ErrRestoreLost
	}
	return st, err
}

// convRef names a conversation across tenants.
type convRef struct{ tenant, conv string }

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
	if s.restoring == nil {
		return nil
	}
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
				"took", time.Since(start).Round(time.Millisecond))
		}
		next.Reset(r.every)
	}
}
