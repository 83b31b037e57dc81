package persistence

import (
	"context"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// noteTouches records each conversation's newest message time for the
// next touch; at the bound it touches at once.
func (p *Persister) noteTouches(ctx context.Context, events []PersistenceEvent) {
	p.touchMu.Lock()
	if p.touch == nil {
		p.touch = map[string]time.Time{}
	}
	for _, e := range events {
		if e.Status != StatusPersisted {
			continue
		}
		id := docID(e.TenantID, e.ConversationID)
		if e.PersistedAt.After(p.touch[id]) {
			p.touch[id] = e.PersistedAt
		}
	}
	full := len(p.touch) >= maxTouchPending
	p.touchMu.Unlock()
	if full {
		p.flushTouches(ctx)
	}
}

// touchLoop flushes touches every touchEvery, or less often while the
// store is slow: a round waits touchShare times as long as its writes
// held the store (at most touchEveryMax), so that touches take a bounded
// share of the store's time from the message inserts.
func (p *Persister) touchLoop(ctx context.Context) {
	t := time.NewTimer(touchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p.flushTouches(final)
			cancel()
			return
		case <-t.C:
			busy := p.flushTouches(ctx)
			t.Reset(min(max(touchEvery, touchShare*busy), touchEveryMax))
		}
	}
}

// flushTouches advances last_message_at with $max. The conversations are
// grouped by their newest message's time, which every message of a
// persisted batch shares, so a round is one updateMany per batch that was
// the newest of some conversation rather than one update per
// conversation. Each statement takes a store slot as an insert does, so
// inserts go on between them: on FerretDB/SQLite beside a saturated load a
// round for 500 busy rooms held the store's single writer for 10 s, and
// held in one piece it stopped the inserts for as long. What fails is kept
// for the next round. It returns how long its writes held the store.
func (p *Persister) flushTouches(ctx context.Context) (busy time.Duration) {
	p.touchMu.Lock()
	latest := p.touch
	p.touch = nil
	p.touchMu.Unlock()
	if len(latest) == 0 {
		return 0
	}
	groups := touchGroups(latest)
	for i, g := range groups {
		took, err := p.advance(ctx, g)
		busy += took
		if err != nil {
			p.logger.Warn("persister: last_message_at not advanced; retrying", "err", err)
			p.touchMu.Lock()
			if p.touch == nil {
				p.touch = map[string]time.Time{}
			}
			for _, g := range groups[i:] {
				for _, id := range g.ids {
					if g.at.After(p.touch[id]) {
						p.touch[id] = g.at
					}
				}
			}
			p.touchMu.Unlock()
			return busy
		}
	}
	return busy
}

// touchGroup is the conversations whose newest message has time at.
type touchGroup struct {
	at  time.Time
	ids []string
}

// maxTouchGroupIDs bounds the ids of one updateMany: its command stays
// small, and on a slow store one statement holds the store for a bounded
// time (about 2 s for 100 on FerretDB/SQLite beside a saturated load).
const maxTouchGroupIDs = 100

// touchGroups groups conversation ids by time, oldest first, at most
// maxTouchGroupIDs per group.
func touchGroups(latest map[string]time.Time) []touchGroup {
	byTime := map[time.Time][]string{}
	for id, t := range latest {
		byTime[t] = append(byTime[t], id)
	}
	groups := make([]touchGroup, 0, len(byTime))
	for t, ids := range byTime {
		slices.Sort(ids)
		for len(ids) > 0 {
			n := min(len(ids), maxTouchGroupIDs)
			groups = append(groups, touchGroup{at: t, ids: ids[:n:n]})
			ids = ids[n:]
		}
	}
	slices.SortFunc(groups, func(a, b touchGroup) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.ids[0], b.ids[0])
	})
	return groups
}

// advance moves g's conversations forward once a store slot is free, and
// returns how long the write held the slot.
func (p *Persister) advance(ctx context.Context, g touchGroup) (time.Duration, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-p.slots }()
	start := time.Now()
	_, err := p.convs.UpdateMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: g.ids}}}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "last_message_at", Value: g.at}}}})
	return time.Since(start), err
}
