package persistence

import (
	"context"
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

// flushTouches advances last_message_at with $max, in chunks small enough
// for every MongoDB-wire server; what fails is kept for the next round.
func (p *Persister) flushTouches(ctx context.Context) {
	p.touchMu.Lock()
	latest := p.touch
	p.touch = nil
	p.touchMu.Unlock()
	if len(latest) == 0 {
		return
	}
	ids := make([]string, 0, len(latest))
	models := make([]mongo.WriteModel, 0, len(latest))
	for id, t := range latest {
		ids = append(ids, id)
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: id}}).
			SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: "last_message_at", Value: t}}}}))
	}
	const chunk = 40
	for i := 0; i < len(models); i += chunk {
		end := min(i+chunk, len(models))
		if _, err := p.convs.BulkWrite(ctx, models[i:end], options.BulkWrite().SetOrdered(false)); err != nil {
			p.logger.Warn("persister: last_message_at not advanced; retrying", "err", err)
			p.touchMu.Lock()
			if p.touch == nil {
				p.touch = map[string]time.Time{}
			}
			for _, id := range ids[i:] {
				if latest[id].After(p.touch[id]) {
					p.touch[id] = latest[id]
				}
			}
			p.touchMu.Unlock()
			return
		}
	}
}
