package persistence

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// A stopping persister gives its last touch round a few seconds. On
// FerretDB an update costs tens of milliseconds a conversation under load,
// so that round advances about a hundred conversations while a busy node
// has hundreds waiting, and a conversation that gets no further message
// would keep a stale last_message_at for good. What the round leaves is
// parked in Redis (TouchesKey) instead, and the persisters still running,
// or the next to start, take it into their own rounds.

const (
	// parkedTakeEvery is how often a persister looks for parked touches;
	// it looks again at once while a take came back full.
	parkedTakeEvery = 10 * time.Second
	// maxParkedTake bounds the touches one take moves into memory.
	maxParkedTake = 10000
	// parkChunk bounds the conversations of one park script call.
	parkChunk = 2000
	// parkTimeout bounds parking at shutdown.
	parkTimeout = 2 * time.Second
)

// parkScript keeps, for each conversation _id in ARGV (pairs of _id and
// Unix milliseconds), the later of the time given and the one parked.
var parkScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if not cur or tonumber(cur) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
`)

// takeScript removes and returns up to ARGV[1] parked touches, as pairs
// of _id and Unix milliseconds.
var takeScript = redis.NewScript(`
local got = redis.call('HRANDFIELD', KEYS[1], ARGV[1], 'WITHVALUES')
for i = 1, #got, 2 do
  redis.call('HDEL', KEYS[1], got[i])
end
return got
`)

// parkTouches moves the pending touches to Redis and returns how many it
// parked; those it could not park stay pending. last_message_at is a BSON
// date, in milliseconds, so parking milliseconds loses nothing.
func (p *Persister) parkTouches(ctx context.Context) (int, error) {
	p.touchMu.Lock()
	latest := p.touch
	p.touch = nil
	p.touchMu.Unlock()
	args := make([]any, 0, 2*len(latest))
	for id, at := range latest {
		args = append(args, id, at.UnixMilli())
	}
	parked := 0
	for len(args) > 0 {
		n := min(len(args), 2*parkChunk)
		if err := parkScript.Run(ctx, p.rdb, []string{TouchesKey}, args[:n]...).Err(); err != nil {
			rest := make(map[string]time.Time, len(args)/2)
			for i := 0; i < len(args); i += 2 {
				id := args[i].(string)
				rest[id] = latest[id]
			}
			p.keepTouches(touchGroups(rest))
			return parked, fmt.Errorf("park touches: %w", err)
		}
		parked += n / 2
		args = args[n:]
	}
	return parked, nil
}

// takeParkedTouches moves up to n parked touches into the pending ones
// and returns how many it took.
func (p *Persister) takeParkedTouches(ctx context.Context, n int) (int, error) {
	got, err := takeScript.Run(ctx, p.rdb, []string{TouchesKey}, n).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("take parked touches: %w", err)
	}
	p.touchMu.Lock()
	defer p.touchMu.Unlock()
	if p.touch == nil {
		p.touch = map[string]time.Time{}
	}
	took := 0
	for i := 0; i+1 < len(got); i += 2 {
		ms, err := strconv.ParseInt(got[i+1], 10, 64)
		if err != nil {
			continue // not a time this package wrote
		}
		if at := time.UnixMilli(ms).UTC(); at.After(p.touch[got[i]]) {
			p.touch[got[i]] = at
		}
		took++
	}
	return took, nil
}

// takeParked takes parked touches when it is time to look, as many as the
// pending bound leaves room for, and returns when to look next.
func (p *Persister) takeParked(ctx context.Context, now, next time.Time) time.Time {
	if now.Before(next) {
		return next
	}
	want := min(maxParkedTake, maxTouchPending-p.pendingTouches())
	if want <= 0 {
		return now.Add(parkedTakeEvery)
	}
	took, err := p.takeParkedTouches(ctx, want)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			p.logger.Warn("persister: parked last_message_at not taken; trying again later", "err", err)
		}
	case took == want:
		return now // more may wait
	case took > 0:
		p.logger.Info("persister: took parked last_message_at", "conversations", took)
	}
	return now.Add(parkedTakeEvery)
}
