package persistence

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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

	mu        sync.Mutex
	restoring chan struct{} // closed when this node's restore ends; nil if none runs
}

// NewSequencer returns a Sequencer keeping statuses for statusTTL and at
// least the last recentLen messages of each room for recentTTL after the
// batch that last set its TTL (the one that created the list, or one with
// RefreshRecent). The list is trimmed back to recentLen once it is an
// eighth (at least 8) longer, not at every message: a trim costs Redis as
// much as the push, and every message pays for the push.
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

// assignScript sequences the batches of several rooms in one call: a
// script call has a fixed cost in Redis (about a quarter of a one-message
// assignment), and at chat rates a room's batch is one or two messages,
// so a call for several rooms instead of one per room saves that share.
// ARGV[1] status TTL seconds, ARGV[2] recent list length, ARGV[3] recent
// list TTL seconds, then per room: conversation id, the caller's lease
// token, n, "1" to set the recent list's TTL again (a list the batch
// creates gets it anyway), and the n messages' bodies (message:new data
// without seq).
// KEYS per room: its seq key, recent list, lease, then the n status keys.
// A room answers a table of "n|seq" (new) or the status found (seen
// before), or a string: "FENCED" when its lease is not the caller's (a
// stale activation gets no seq and cannot publish), "ERR …" when one of
// its commands failed. Each room runs under pcall, so one room's error
// leaves the others' outcome as it would be on their own.
var assignScript = redis.NewScript(`
local keep = tonumber(ARGV[2])
local slack = math.max(8, math.floor(keep / 8))
local res = {}
local k, a = 1, 4
while a <= #ARGV do
  local conv, token, n, refresh = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  local seqKey, recent, lease = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local ok, out = pcall(function()
    if redis.call('GET', lease) ~= token then
      return 'FENCED'
    end
    local got = {}
    local len, pushed = 0, 0
    for j = 1, n do
      local statusKey = KEYS[k + 2 + j]
      local cur = redis.call('GET', statusKey)
      if cur then
        got[j] = cur
      else
        local seq = redis.call('INCR', seqKey)
        redis.call('SET', statusKey, 'p|' .. seq .. '||' .. conv, 'EX', ARGV[1])
        len = redis.call('RPUSH', recent, seq .. '|' .. ARGV[a + 3 + j])
        pushed = pushed + 1
        got[j] = 'n|' .. seq
      end
    end
    if len > 0 then
      if len >= keep + slack then
        redis.call('LTRIM', recent, -keep, -1)
      end
      if refresh == '1' or len == pushed then
        redis.call('EXPIRE', recent, ARGV[3])
      end
    end
    return got
  end)
  if ok then
    res[#res + 1] = out
  else
    res[#res + 1] = 'ERR ' .. tostring(type(out) == 'table' and out.err or out)
  end
  k = k + 3 + n
  a = a + 4 + n
end
return res
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
	// RefreshRecent sets the recent list's TTL again. Setting it at every
	// batch would be one more Redis command for nearly every message at
	// chat rates; a room sets it once in a while instead.
	RefreshRecent bool
}

// maxScriptMessages bounds the messages of one assignScript call: a script
// holds Redis for all its clients while it runs (20–60 µs of Redis CPU a
// message here, with the rest of the round trip), so the rooms of a big
// pipeline are spread over several calls of about this many messages
// each, rather than one call of many milliseconds.
const maxScriptMessages = 64

// scriptCall is one assignScript call: batches[from:to] of AssignMany.
type scriptCall struct {
	from, to int
	keys     []string
	args     []any
}

// AssignMany gives seqs to the messages of several rooms in one Redis round
// trip (two the first time Redis sees the script), in as few script calls
// as maxScriptMessages allows; each room's batch is as atomic as on its
// own. res[i] and errs[i] are batch i's outcome.
func (s *Sequencer) AssignMany(ctx context.Context, batches []*AssignBatch) (res [][]Assignment, errs []error) {
	res, errs = make([][]Assignment, len(batches)), make([]error, len(batches))
	calls := s.scriptCalls(batches)
	cmds := runScripts(ctx, s.rdb, assignScript, len(calls), func(i int) ([]string, []any) {
		return calls[i].keys, calls[i].args
	})
	for ci, c := range calls {
		rooms, err := cmds[ci].Slice()
		if err == nil && len(rooms) != c.to-c.from {
			err = fmt.Errorf("%d results for %d rooms", len(rooms), c.to-c.from)
		}
		for i := c.from; i < c.to; i++ {
			if err != nil {
				errs[i] = fmt.Errorf("assign seq: %w", err)
				continue
			}
			res[i], errs[i] = assignResult(rooms[i-c.from], len(batches[i].MessageIDs))
		}
	}
	return res, errs
}

// scriptCalls spreads batches over calls of about maxScriptMessages
// messages; a room's batch is never split.
func (s *Sequencer) scriptCalls(batches []*AssignBatch) []scriptCall {
	var calls []scriptCall
	var c *scriptCall
	msgs := 0
	for i, b := range batches {
		if c == nil || msgs+len(b.MessageIDs) > maxScriptMessages && msgs > 0 {
			calls = append(calls, scriptCall{from: i})
			c = &calls[len(calls)-1]
			c.args = append(c.args, int(s.statusTTL/time.Second), s.recentLen, int(s.recentTTL/time.Second))
			msgs = 0
		}
		c.keys = append(c.keys, SeqKey(b.Tenant, b.Conv), RecentKey(b.Tenant, b.Conv), LeaseKey(b.Tenant, b.Conv))
		for _, id := range b.MessageIDs {
			c.keys = append(c.keys, StatusKey(b.Tenant, id))
		}
		refresh := "0"
		if b.RefreshRecent {
			refresh = "1"
		}
		c.args = append(c.args, b.Conv, b.Lease.Token, len(b.MessageIDs), refresh)
		for _, body := range b.Bodies {
			c.args = append(c.args, body)
		}
		c.to = i + 1
		msgs += len(b.MessageIDs)
	}
	return calls
}

// assignResult reads one room's answer of assignScript.
func assignResult(room any, n int) ([]Assignment, error) {
	switch r := room.(type) {
	case string:
		if r == "FENCED" {
			return nil, ErrFenced
		}
		return nil, fmt.Errorf("assign seq: %s", r)
	case []any:
		if len(r) != n {
			return nil, fmt.Errorf("assign seq: %d results for %d messages", len(r), n)
		}
		out := make([]Assignment, len(r))
		for i, v := range r {
			text, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("assign seq: result %T, want a string", v)
			}
			a, err := decodeStatus(text)
			if err != nil {
				return nil, fmt.Errorf("assign seq: %w", err)
			}
			out[i] = a
		}
		return out, nil
	default:
		return nil, fmt.Errorf("assign seq: room result %T", room)
	}
}

// initScript reads a room's counter. KEYS[1] the counter, KEYS[2] the
// complete mark. A missing counter with the mark is a conversation never
// sequenced: it is set to 0 and 0 answered. Without the mark, nil: the
// caller needs the floor from MongoDB.
var initScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  return v
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], '0')
  return '0'
end
return false
`)

// Init returns the room's counter. Redis without it and without the
// complete mark (SeqCompleteKey) lost its data: if this node restores
// the counters, Init waits for that; if not, it makes sure the counter is
// at least floor (the highest seq MongoDB holds).
func (s *Sequencer) Init(ctx context.Context, tenant, conv string, floor func(context.Context) (int64, error)) (int64, error) {
	key := SeqKey(tenant, conv)
	for {
		v, err := initScript.Run(ctx, s.rdb, []string{key, SeqCompleteKey}).Int64()
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("read seq: %w", err)
		}
		restored := s.restoreInProgress()
		if restored == nil {
			break
		}
		select {
		case <-restored:
		case <-ctx.Done():
			return 0, fmt.Errorf("seq of %s waits for the restore: %w", conv, ctx.Err())
		}
	}
	f, err := floor(ctx)
	if err != nil {
		return 0, err
	}
	if err := s.rdb.SetNX(ctx, key, f, 0).Err(); err != nil {
		return 0, fmt.Errorf("init seq: %w", err)
	}
	v, err := s.rdb.Get(ctx, key).Int64()
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
