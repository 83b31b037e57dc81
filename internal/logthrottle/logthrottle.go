// Package logthrottle bounds how many log records of one kind a process
// writes. In an outage a chat engine meets the same failure once per
// message, thousands of times a second (every message refused by a
// broker that is down); one line each would bury everything else in the
// log and cost the node as much CPU as the messages themselves.
package logthrottle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxKinds bounds the kinds of record tracked at once. Records are keyed
// by level and message, which are constant strings in caasd, so the bound
// is never reached in practice; past it records pass untracked.
const maxKinds = 1024

// SuppressedKey names the attribute that tells how many records like this
// one were dropped in the window before it.
const SuppressedKey = "suppressed"

// Handler passes at most Burst records of one kind (level and message)
// per Interval to the next handler and drops the rest. Their number is
// written when the window ends, as a record of that kind with only
// SuppressedKey, or with the first record of the next window if that
// comes first.
type Handler struct {
	next slog.Handler
	st   *state
}

type kind struct {
	level slog.Level
	msg   string
}

type window struct {
	start   time.Time
	n       int // records passed in the window
	dropped int // records dropped in the window
}

// state is shared by a Handler and those derived from it with WithAttrs
// or WithGroup, so that a kind is counted once whatever its attributes.
type state struct {
	interval time.Duration
	burst    int
	// schedule runs f after d; a timer per kind that dropped something,
	// so at most maxKinds.
	schedule func(d time.Duration, f func())

	mu    sync.Mutex
	kinds map[kind]*window
}

// New returns a Handler in front of next; burst ≤ 0 or interval ≤ 0
// passes everything.
func New(next slog.Handler, interval time.Duration, burst int) *Handler {
	return &Handler{next: next, st: &state{interval: interval, burst: burst, kinds: map[kind]*window{},
		schedule: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}}
}

// Enabled is the next handler's.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle passes r on unless its kind is over the burst in this window.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	k, at := kind{r.Level, r.Message}, r.Time
	if at.IsZero() {
		at = time.Now()
	}
	pass, dropped, ends := h.st.admit(k, at)
	if !ends.IsZero() {
		next := h.next
		h.st.schedule(ends.Sub(at), func() { h.st.flush(k, next, ends) })
	}
	if !pass {
		return nil
	}
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int(SuppressedKey, dropped))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs derives a Handler that shares this one's counts.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), st: h.st}
}

// WithGroup derives a Handler that shares this one's counts.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st}
}

// admit counts a record of kind k at t; it reports whether the record
// passes and, if so, how many of its kind the window before dropped that
// were not written yet; and, when it is the window's first drop, when the
// window ends.
func (s *state) admit(k kind, t time.Time) (pass bool, dropped int, ends time.Time) {
	if s.burst <= 0 || s.interval <= 0 {
		return true, 0, time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.kinds[k]
	if w == nil {
		if len(s.kinds) >= maxKinds && !s.sweepLocked(t) {
			return true, 0, time.Time{}
		}
		s.kinds[k] = &window{start: t, n: 1}
		return true, 0, time.Time{}
	}
	if t.Sub(w.start) >= s.interval {
		dropped = w.dropped
		*w = window{start: t, n: 1}
		return true, dropped, time.Time{}
	}
	if w.n < s.burst {
		w.n++
		return true, 0, time.Time{}
	}
	w.dropped++
	if w.dropped == 1 {
		ends = w.start.Add(s.interval)
	}
	return false, 0, ends
}

// flush writes, through next, how many records of kind k the window
// ending at ends dropped, unless a record of the next window has told it.
func (s *state) flush(k kind, next slog.Handler, ends time.Time) {
	s.mu.Lock()
	w := s.kinds[k]
	if w == nil || w.dropped == 0 || !w.start.Add(s.interval).Equal(ends) {
		s.mu.Unlock()
		return
	}
	n := w.dropped
	w.dropped = 0
	s.mu.Unlock()
	r := slog.NewRecord(ends, k.level, k.msg, 0)
	r.AddAttrs(slog.Int(SuppressedKey, n))
	_ = next.Handle(context.Background(), r)
}

// sweepLocked forgets the kinds whose window has ended (with the count
// of what they dropped, which only a later record of theirs would tell),
// and reports whether that made room.
func (s *state) sweepLocked(t time.Time) bool {
	for k, w := range s.kinds {
		if t.Sub(w.start) >= s.interval {
			delete(s.kinds, k)
		}
	}
	return len(s.kinds) < maxKinds
}
