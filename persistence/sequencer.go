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
//
// The same round trip appends each new message to the room's recent list,
// so that a client catching up after a restart gets exactly the
// messages it missed even before the persister has stored them.
type Sequencer struct {
	rdb       redis.UniversalClient
	statusTTL time.Duration
	recentLen int
	recentTTL time.Duration
}

// NewSequencer returns a Sequencer keeping statuses for statusTTL and at
// least the last recentLen messages of each room for recentTTL after its
// last one. The list is trimmed back to recentLen once it is an eighth
// (at least 8) longer, not at every message: a trim costs Redis as much as
// the push, and every message pays for the push.
func NewSequencer(rdb redis.UniversalClient, statusTTL time.Duration, recentLen int, recentTTL time.Duration) *Sequencer {
	return &Sequencer{rdb: rdb, statusTTL: statusTTL, recentLen: recentLen, recentTTL: recentTTL}
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

// assignScript: KEYS[1] the room's seq key, KEYS[2] its recent list,
// KEYS[3] its lease, KEYS[4..] status keys; ARGV[1] status TTL seconds,
// ARGV[2] conversation id, ARGV[3] recent list length, ARGV[4] recent list
// TTL seconds, ARGV[5] the caller's lease token, ARGV[6..] each message's
// body (its message:new data without seq). A caller whose lease is not the
// current one gets no seq at all: a stale activation cannot publish.
var assignScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) ~= ARGV[5] then
  return redis.error_reply('FENCED lease lost')
end
local out = {}
local len = 0
for i = 4, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if cur then
    out[#out+1] = cur
  else
    local seq = redis.call('INCR', KEYS[1])
    redis.call('SET', KEYS[i], 'p|' .. seq .. '||' .. ARGV[2], 'EX', ARGV[1])
    len = redis.call('RPUSH', KEYS[2], seq .. '|' .. ARGV[i + 2])
    out[#out+1] = 'n|' .. seq
  end
end
if len > 0 then
  local keep = tonumber(ARGV[3])
  if len >= keep + math.max(8, math.floor(keep / 8)) then
    redis.call('LTRIM', KEYS[2], -keep, -1)
  end
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return out
`)

// AssignBatch is one room's messages to sequence, in order. Lease must
// still be the room's lease, or the whole batch is refused with ErrFenced;
// Bodies are the messages' message:new data without seq, kept in the
// room's recent list.
type AssignBatch struct {
	Tenant, Conv string
	Lease        *Lease
	MessageIDs   []string
	Bodies       [][]byte
}

// assign queues b's script on pipe.
func (s *Sequencer) assign(ctx context.Context, pipe redis.Pipeliner, b *AssignBatch, eval bool) *redis.Cmd {
	keys := make([]string, 0, len(b.MessageIDs)+3)
	keys = append(keys, SeqKey(b.Tenant, b.Conv), RecentKey(b.Tenant, b.Conv), LeaseKey(b.Tenant, b.Conv))
	for _, id := range b.MessageIDs {
		keys = append(keys, StatusKey(b.Tenant, id))
	}
	args := make([]any, 0, len(b.Bodies)+5)
	args = append(args, int(s.statusTTL/time.Second), b.Conv, s.recentLen, int(s.recentTTL/time.Second), b.Lease.Token)
	for _, body := range b.Bodies {
		args = append(args, body)
	}
	if eval {
		return assignScript.Eval(ctx, pipe, keys, args...)
	}
	return assignScript.EvalSha(ctx, pipe, keys, args...)
}

// AssignMany gives seqs to the messages of several rooms in one Redis round
// trip (two the first time Redis sees the script): one script per batch,
// each as atomic as on its own. res[i] and errs[i] are batch i's outcome.
func (s *Sequencer) AssignMany(ctx context.Context, batches []*AssignBatch) (res [][]Assignment, errs []error) {
	res, errs = make([][]Assignment, len(batches)), make([]error, len(batches))
	cmds := runScripts(ctx, s.rdb, len(batches), func(pipe redis.Pipeliner, i int, eval bool) *redis.Cmd {
		return s.assign(ctx, pipe, batches[i], eval)
	})
	for i, c := range cmds {
		res[i], errs[i] = assignResult(c, len(batches[i].MessageIDs))
	}
	return res, errs
}

func assignResult(c *redis.Cmd, n int) ([]Assignment, error) {
	res, err := c.StringSlice()
	if err != nil {
		if strings.HasPrefix(err.Error(), "FENCED") {
			return nil, ErrFenced
		}
		return nil, fmt.Errorf("assign seq: %w", err)
	}
	if len(res) != n {
		return nil, fmt.Errorf("assign seq: %d results for %d messages", len(res), n)
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
// resend of the same id is treated as new, and takes it out of the room's
// recent list.
func (s *Sequencer) Release(ctx context.Context, tenant, conv, messageID string, seq int64, body []byte) error {
	pipe := s.rdb.TxPipeline()
	pipe.Del(ctx, StatusKey(tenant, messageID))
	pipe.LRem(ctx, RecentKey(tenant, conv), 1, strconv.FormatInt(seq, 10)+"|"+string(body))
	_, err := pipe.Exec(ctx)
	return err
}

// RecentEntry is one message of a room's recent list.
type RecentEntry struct {
	Seq  int64
	Body []byte // message:new data without seq
}

// Recent returns the room's recent list, oldest first, up to seq maxSeq.
func (s *Sequencer) Recent(ctx context.Context, tenant, conv string, maxSeq int64) ([]RecentEntry, error) {
	raw, err := s.rdb.LRange(ctx, RecentKey(tenant, conv), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("recent messages: %w", err)
	}
	out := make([]RecentEntry, 0, len(raw))
	for _, r := range raw {
		seqText, body, ok := strings.Cut(r, "|")
		if !ok {
			continue
		}
		seq, err := strconv.ParseInt(seqText, 10, 64)
		if err != nil || seq > maxSeq {
			continue
		}
		out = append(out, RecentEntry{Seq: seq, Body: []byte(body)})
	}
	return out, nil
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
