package persistence

import (
	"context"
	"errors"
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
		if _, err := p.flushTouches(ctx, 0); err != nil {
			p.logger.Warn("persister: last_message_at not advanced; kept for the next round", "err", err)
		}
	}
}

// touchLoop flushes touches every touchEvery, or less often while the
// store is slow: a round waits touchShare times as long as its writes
// held the store (at most touchEveryMax), so that touches take a bounded
// share of the store's time from the message inserts. A round first takes
// what stopped persisters parked, when it is time to look (takeParked).
func (p *Persister) touchLoop(ctx context.Context) {
	t := time.NewTimer(touchEvery)
	defer t.Stop()
	var takeAt time.Time // when to look for parked touches; now, first
	for {
		select {
		case <-ctx.Done():
			p.lastTouches()
			return
		case <-t.C:
			takeAt = p.takeParked(ctx, time.Now(), takeAt)
			busy, err := p.flushTouches(ctx, touchPace)
			if err != nil && ctx.Err() == nil {
				p.logger.Warn("persister: last_message_at not advanced; kept for the next round", "err", err)
			}
			t.Reset(min(max(touchEvery, touchShare*busy), touchEveryMax))
		}
	}
}

// lastTouches is a stopping persister's last round: what it cannot
// advance in finalTouchTimeout is parked for the other persisters.
func (p *Persister) lastTouches() {
	final, cancel := context.WithTimeout(context.Background(), finalTouchTimeout)
	_, ferr := p.flushTouches(final, 0)
	cancel()
	left := p.pendingTouches()
	if left == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(context.Background(), parkTimeout)
	parked, perr := p.parkTouches(pctx)
	cancel()
	if perr != nil {
		// Each conversation's last_message_at catches up with its next
		// stored message.
		p.logger.Warn("persister: last_message_at not advanced before shutdown", "conversations", left-parked, "err", errors.Join(ferr, perr))
		return
	}
	cause := "out of time"
	if ferr != nil {
		cause = ferr.Error()
	}
	p.logger.Info("persister: last_message_at parked for the other persisters", "conversations", parked, "cause", cause)
}

// flushTouches advances last_message_at with $max. The conversations are
// grouped by their newest message's time, which every message of a
// persisted batch shares, so a round is one updateMany per batch that was
// the newest of some conversation rather than one update per
// conversation. Each statement has the store to itself (see advance), and
// after one that held it for d the round rests pace×d, so that inserts go
// on between statements with most of the store's time. What fails or is
// not reached before ctx ends is kept for the next round, and the
// statement's error returned. It returns how long its writes held the
// store.
func (p *Persister) flushTouches(ctx context.Context, pace int) (busy time.Duration, err error) {
	p.touchMu.Lock()
	latest := p.touch
	p.touch = nil
	p.touchMu.Unlock()
	if len(latest) == 0 {
		return 0, nil
	}
	groups := touchGroups(latest)
	var last time.Duration
	for i, g := range groups {
		if rest := time.Duration(pace) * last; rest > 0 {
			select {
			case <-ctx.Done():
				p.keepTouches(groups[i:])
				return busy, nil
			case <-time.After(rest):
			}
		}
		took, err := p.advance(ctx, g)
		busy, last = busy+took, took
		if err != nil {
			p.keepTouches(groups[i:])
			return busy, err
		}
	}
	return busy, nil
}

// pendingTouches is how many conversations await a touch.
func (p *Persister) pendingTouches() int {
	p.touchMu.Lock()
	defer p.touchMu.Unlock()
	return len(p.touch)
}

// keepTouches puts groups back for the next round, unless a newer time
// for a conversation came in meanwhile.
func (p *Persister) keepTouches(groups []touchGroup) {
	p.touchMu.Lock()
	defer p.touchMu.Unlock()
	if p.touch == nil {
		p.touch = map[string]time.Time{}
	}
	for _, g := range groups {
		for _, id := range g.ids {
			if g.at.After(p.touch[id]) {
				p.touch[id] = g.at
			}
		}
	}
}

// touchGroup is the conversations whose newest message has time at.
type touchGroup struct {
	at  time.Time
	ids []string
}

// maxTouchGroupIDs bounds the ids of one updateMany, and so how long one
// statement holds the store: FerretDB on SQLite writes each document an
// update changes in a transaction of its own, about 55 ms each beside a
// full insert load (3 s for 52), where MongoDB takes about as long for
// the whole statement as for one.
const maxTouchGroupIDs = 8

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

// advance moves g's conversations forward once every store slot is its
// own, and returns how long the write held the store. It takes them all:
// on a store with one writer (SQLite under FerretDB) a statement beside an
// insert waits for the insert's lock through SQLite's busy back-off, and
// the insert for the statement's. Alone, a statement of maxTouchGroupIDs
// holds FerretDB for about half a second and MongoDB for milliseconds, and
// the inserts go on between statements (flushTouches paces them).
func (p *Persister) advance(ctx context.Context, g touchGroup) (time.Duration, error) {
	held := 0
	defer func() {
		for range held {
			<-p.slots
		}
	}()
	for held < cap(p.slots) {
		select {
		case p.slots <- struct{}{}:
			held++
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	start := time.Now()
	_, err := p.convs.UpdateMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: g.ids}}}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "last_message_at", Value: g.at}}}})
	return time.Since(start), err
}
