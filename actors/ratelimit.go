package actors

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/caasd/caasd/internal/config"
	"github.com/caasd/caasd/internal/wire"
)

// RateLimiter bounds each user's messages per minute and per hour across
// all of the user's connections on this node, and refuses the same text
// sent too often in a window (the spam rule). Its table is bounded: users
// idle for an hour are swept, and at MaxUsers new users are refused.
type RateLimiter struct {
	limits   config.Limits
	maxUsers int
	seed     maphash.Seed
	now      func() time.Time

	mu    sync.Mutex
	users map[string]*userRate
}

type userRate struct {
	minuteStart, hourStart time.Time
	minute, hour           int
	last                   time.Time
	recent                 [spamRing]spamEntry
	next                   int
}

type spamEntry struct {
	hash uint64
	at   time.Time
}

const spamRing = 32

// NewRateLimiter returns a limiter for limits holding at most maxUsers.
func NewRateLimiter(limits config.Limits, maxUsers int) *RateLimiter {
	return &RateLimiter{limits: limits, maxUsers: maxUsers, seed: maphash.MakeSeed(), now: time.Now, users: make(map[string]*userRate)}
}

// Allow counts one message of user with text; nil means it may go on.
func (r *RateLimiter) Allow(user, text string) *wire.Error {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.users[user]
	if !ok {
		if len(r.users) >= r.maxUsers {
			return wire.Errorf(wire.CodeRateLimited, "too many active users on this node; try again")
		}
		u = &userRate{minuteStart: now, hourStart: now}
		r.users[user] = u
	}
	u.last = now
	if now.Sub(u.minuteStart) >= time.Minute {
		u.minuteStart, u.minute = now, 0
	}
	if now.Sub(u.hourStart) >= time.Hour {
		u.hourStart, u.hour = now, 0
	}
	if u.minute >= r.limits.PerMinute {
		return wire.Errorf(wire.CodeRateLimited, "too many messages per minute")
	}
	if u.hour >= r.limits.PerHour {
		return wire.Errorf(wire.CodeRateLimited, "too many messages per hour")
	}
	if text != "" {
		h := maphash.String(r.seed, text)
		same := 0
		for _, e := range u.recent {
			if e.hash == h && now.Sub(e.at) < r.limits.SpamWindow {
				same++
			}
		}
		if same >= r.limits.SpamRepeat {
			return wire.Errorf(wire.CodeRateLimited, "the same text was sent too many times; slow down")
		}
		u.recent[u.next] = spamEntry{hash: h, at: now}
		u.next = (u.next + 1) % spamRing
	}
	u.minute++
	u.hour++
	return nil
}

// Run sweeps idle users until ctx ends.
func (r *RateLimiter) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sweep(r.now().Add(-time.Hour))
		}
	}
}

func (r *RateLimiter) sweep(before time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, u := range r.users {
		if u.last.Before(before) {
			delete(r.users, k)
		}
	}
}
