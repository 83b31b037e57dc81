package persistence

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is one activation's claim on a room, with an epoch that grows with
// every activation.
type Lease struct {
	Token string // "<node>|<epoch>"
	Epoch int64
	// validUntil (unix nanoseconds) is when this node stops trusting the
	// lease without a renewal: earlier than its expiry in Redis, so that a
	// node that was paused finds out from its own clock before it acts.
	validUntil atomic.Int64
}

// Valid reports whether the lease may still be trusted at now.
func (l *Lease) Valid(now time.Time) bool { return l != nil && now.UnixNano() < l.validUntil.Load() }

func (l *Lease) trustUntil(t time.Time) { l.validUntil.Store(t.UnixNano()) }

// Leases keeps room leases in Redis.
type Leases struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// NewLeases returns a lease store whose leases expire after ttl without renewal.
func NewLeases(rdb redis.UniversalClient, ttl time.Duration) *Leases {
	return &Leases{rdb: rdb, ttl: ttl}
}

// LeaseKey and EpochKey hold a room's lease and its epoch counter.
func LeaseKey(tenant, conv string) string { return tenantPrefix(tenant) + "lease:" + conv }

// EpochKey holds a room's last lease epoch.
func EpochKey(tenant, conv string) string { return tenantPrefix(tenant) + "epoch:" + conv }

var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and ARGV[3] ~= '1' then
  local holder = string.match(cur, '^(.*)|')
  if holder ~= ARGV[1] then return {0, cur} end
end
local epoch = redis.call('INCR', KEYS[2])
local val = ARGV[1] .. '|' .. epoch
redis.call('SET', KEYS[1], val, 'PX', tonumber(ARGV[2]))
return {1, val}
`)

// Acquire takes the room's lease for node with a new epoch. Unless force is
// set, a lease held by another node is refused with ErrLeaseHeld and its
// holder; callers force only when that holder is not a live member.
func (l *Leases) Acquire(ctx context.Context, tenant, conv, node string, force bool) (*Lease, string, error) {
	start := time.Now()
	f := "0"
	if force {
		f = "1"
	}
	res, err := acquireScript.Run(ctx, l.rdb, []string{LeaseKey(tenant, conv), EpochKey(tenant, conv)}, node, l.ttl.Milliseconds(), f).Slice()
	if err != nil {
		return nil, "", fmt.Errorf("acquire lease: %w", err)
	}
	ok, _ := res[0].(int64)
	val, _ := res[1].(string)
	if ok != 1 {
		holder, _, _ := strings.Cut(val, "|")
		return nil, holder, ErrLeaseHeld
	}
	_, epochText, _ := strings.Cut(val[len(node):], "|")
	epoch, _ := strconv.ParseInt(epochText, 10, 64)
	lease := &Lease{Token: val, Epoch: epoch}
	lease.trustUntil(start.Add(l.trust()))
	return lease, "", nil
}

// trust is how long a lease is trusted after the start of its last
// acquisition or renewal: a quarter of the TTL less than the TTL.
func (l *Leases) trust() time.Duration { return l.ttl - l.ttl/4 }

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
`)

// Renew extends the lease; ErrFenced if another activation took it.
func (l *Leases) Renew(ctx context.Context, tenant, conv string, lease *Lease) error {
	start := time.Now()
	n, err := renewScript.Run(ctx, l.rdb, []string{LeaseKey(tenant, conv)}, lease.Token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if n != 1 {
		return ErrFenced
	}
	lease.trustUntil(start.Add(l.trust()))
	return nil
}

// LeaseRef names one room's lease for RenewAll.
type LeaseRef struct {
	Tenant, Conv string
	Lease        *Lease
}

// renewManyScript renews the leases of KEYS whose values are their tokens
// (ARGV[2…]) for ARGV[1] ms, and answers 1 for each renewed, 0 for each
// another activation holds or that expired.
var renewManyScript = redis.NewScript(`
local ttl = tonumber(ARGV[1])
local res = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ttl)
    res[i] = 1
  else
    res[i] = 0
  end
end
return res
`)

// maxRenewKeys bounds the leases of one renewal script call. A node
// renews every lease it holds each second; a call per lease costs Redis a
// script call's fixed work each (and the embedded Redis a Lua state each:
// a thousand took it seconds under load, past the leases' trust), while
// a call of a few hundred holds Redis well under a millisecond.
const maxRenewKeys = 256

// RenewAll renews many leases in one round trip; errs[i] is ErrFenced for
// a lease another activation took.
func (l *Leases) RenewAll(ctx context.Context, refs []LeaseRef) (errs []error, err error) {
	start := time.Now()
	cmds := runScripts(ctx, l.rdb, renewManyScript, callsFor(len(refs), maxRenewKeys), func(c int) ([]string, []any) {
		part := callPart(refs, maxRenewKeys, c)
		keys, args := make([]string, len(part)), make([]any, 1, 1+len(part))
		args[0] = l.ttl.Milliseconds()
		for i, r := range part {
			keys[i] = LeaseKey(r.Tenant, r.Conv)
			args = append(args, r.Lease.Token)
		}
		return keys, args
	})
	errs = make([]error, len(refs))
	for c, cmd := range cmds {
		got, err := cmd.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("renew leases: %w", err)
		}
		from := c * maxRenewKeys
		if want := len(callPart(refs, maxRenewKeys, c)); len(got) != want {
			return nil, fmt.Errorf("renew leases: %d answers for %d leases", len(got), want)
		}
		for i, n := range got {
			if n != 1 {
				errs[from+i] = ErrFenced
				continue
			}
			refs[from+i].Lease.trustUntil(start.Add(l.trust()))
		}
	}
	return errs, nil
}

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Release gives the lease up if it is still this activation's.
func (l *Leases) Release(ctx context.Context, tenant, conv string, lease *Lease) error {
	return releaseScript.Run(ctx, l.rdb, []string{LeaseKey(tenant, conv)}, lease.Token).Err()
}
