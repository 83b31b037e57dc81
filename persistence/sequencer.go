package persistence

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sequencer assigns each room's sequence numbers in Redis and records each
// message's status there, in one round trip per batch: a message id seen
// before keeps its first seq (dedup), a new one gets the next seq. Because
// the counter lives in Redis, a room's seq only grows across restarts and
// node changes.
type Sequencer struct {
	rdb       redis.UniversalClient
	statusTTL time.Duration
}

// NewSequencer returns a Sequencer keeping statuses for statusTTL.
func NewSequencer(rdb redis.UniversalClient, statusTTL time.Duration) *Sequencer {
	return &Sequencer{rdb: rdb, statusTTL: statusTTL}
}

// Assignment is the outcome for one message of a batch.
type Assignment struct {
	Seq int64
	// Dup is true when the message id was seen before; Status and
	// PersistedAt then describe the first one.
	Dup          bool
	Status       string
	Conversation string
	PersistedAt  string
}

// assignScript: KEYS[1] the room's seq key, KEYS[2..] status keys;
// ARGV[1] TTL seconds, ARGV[2] conversation id.
var assignScript = redis.NewScript(`
local out = {}
for i = 2, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if cur then
    out[#out+1] = cur
  else
    local seq = redis.call('INCR', KEYS[1])
    redis.call('SET', KEYS[i], 'p|' .. seq .. '||' .. ARGV[2], 'EX', tonumber(ARGV[1]))
    out[#out+1] = 'n|' .. seq
  end
end
return out
`)

// Assign gives seqs to messageIDs of one room, in order.
func (s *Sequencer) Assign(ctx context.Context, tenant, conv string, messageIDs []string) ([]Assignment, error) {
	keys := make([]string, 0, len(messageIDs)+1)
	keys = append(keys, SeqKey(tenant, conv))
	for _, id := range messageIDs {
		keys = append(keys, StatusKey(tenant, id))
	}
	res, err := assignScript.Run(ctx, s.rdb, keys, int(s.statusTTL/time.Second), conv).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("assign seq: %w", err)
	}
	if len(res) != len(messageIDs) {
		return nil, fmt.Errorf("assign seq: %d results for %d messages", len(res), len(messageIDs))
	}
	out := make([]Assignment, len(res))
	for i, r := range res {
		a, err := decodeStatus(r)
		if err != nil {
			return nil, fmt.Errorf("assign seq: %w", err)
		}
		out[i] = a
	}
	return out, nil
}

// Init makes sure the room's counter is at least floor (the highest seq
// MongoDB holds, for a Redis that lost its data) and returns the counter.
func (s *Sequencer) Init(ctx context.Context, tenant, conv string, floor func(context.Context) (int64, error)) (int64, error) {
	key := SeqKey(tenant, conv)
	v, err := s.rdb.Get(ctx, key).Int64()
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("read seq: %w", err)
	}
	f, err := floor(ctx)
	if err != nil {
		return 0, err
	}
	if err := s.rdb.SetNX(ctx, key, f, 0).Err(); err != nil {
		return 0, fmt.Errorf("init seq: %w", err)
	}
	v, err = s.rdb.Get(ctx, key).Int64()
	if err != nil {
		return 0, fmt.Errorf("read seq: %w", err)
	}
	return v, nil
}

// Release forgets a message that never reached Kafka, so that the client's
// resend of the same id is treated as new.
func (s *Sequencer) Release(ctx context.Context, tenant, messageID string) error {
	return s.rdb.Del(ctx, StatusKey(tenant, messageID)).Err()
}

// MarkFailed records that a message could not be confirmed.
func (s *Sequencer) MarkFailed(ctx context.Context, tenant, messageID, conv string, seq int64) error {
	return s.rdb.Set(ctx, StatusKey(tenant, messageID), encodeStatus('f', seq, conv, ""), s.statusTTL).Err()
}

func encodeStatus(kind byte, seq int64, conv, persistedAt string) string {
	var b strings.Builder
	b.WriteByte(kind)
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(seq, 10))
	b.WriteByte('|')
	b.WriteString(persistedAt)
	b.WriteByte('|')
	b.WriteString(conv)
	return b.String()
}

// decodeStatus parses "n|seq" (new) or "kind|seq|persisted_at|conv" with
// kind p, d or f (seen before: pending, done, failed). The conversation id
// comes last so that it may contain any character.
func decodeStatus(s string) (Assignment, error) {
	parts := strings.SplitN(s, "|", 4)
	if len(parts) < 2 {
		return Assignment{}, fmt.Errorf("bad status %q", s)
	}
	seq, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Assignment{}, fmt.Errorf("bad status %q", s)
	}
	a := Assignment{Seq: seq}
	if len(parts) == 4 {
		a.PersistedAt, a.Conversation = parts[2], parts[3]
	}
	switch parts[0] {
	case "n":
		return a, nil
	case "p":
		a.Dup, a.Status = true, StatusPending
	case "d":
		a.Dup, a.Status = true, StatusPersisted
	case "f":
		a.Dup, a.Status = true, StatusFailed
	default:
		return Assignment{}, fmt.Errorf("bad status %q", s)
	}
	return a, nil
}
