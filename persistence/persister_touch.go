package persistence

import (
	"context"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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
// store is slow: a round waits touchShare times as long as the last one
// took (at most touchEveryMax), so that touches take a bounded share of
// the store's time from the message inserts.
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
			start := time.Now()
			p.flushTouches(ctx)
			t.Reset(min(max(touchEvery, touchShare*time.Since(start)), touchEveryMax))
		}
	}
}

// flushTouches advances last_message_at with $max. The conversations are
// grouped by their newest message's time, which every message of a
// persisted batch shares, so a round is one updateMany per batch that was
// the newest of some conversation rather than one update per conversation:
// a store that takes a write lock per statement (SQLite under FerretDB)
// needed seconds for a round of a few hundred busy rooms. Statements go
// in chunks small enough for every MongoDB-wire server, each taking a
// store slot as an insert does; what fails is kept for the next round.
func (p *Persister) flushTouches(ctx context.Context) {
	p.touchMu.Lock()
	latest := p.touch
	p.touch = nil
	p.touchMu.Unlock()
	if len(latest) == 0 {
		return
	}
	groups := touchGroups(latest)
	models := make([]mongo.WriteModel, 0, len(groups))
	for _, g := range groups {
		models = append(models, mongo.NewUpdateManyModel().
			SetFilter(bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: g.ids}}}}).
			SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: "last_message_at", Value: g.at}}}}))
	}
	const chunk = 40
	for i := 0; i < len(models); i += chunk {
		end := min(i+chunk, len(models))
		if err := p.touchChunk(ctx, models[i:end]); err != nil {
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
			return
		}
	}
}

// touchGroup is the conversations whose newest message has time at.
type touchGroup struct {
	at  time.Time
	ids []string
}

// maxTouchGroupIDs bounds the ids of one updateMany, to keep its command
// well under any server's message size.
const maxTouchGroupIDs = 1000

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

// touchChunk writes one chunk of touches once a store slot is free.
func (p *Persister) touchChunk(ctx context.Context, models []mongo.WriteModel) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.slots }()
	_, err := p.convs.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return err
}
