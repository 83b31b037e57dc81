package actors

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/caasd/caasd/persistence"
)

// snapshotSaved is the outcome of a snapshot saved in the background.
type snapshotSaved struct {
	lease      *persistence.Lease
	err        error
	markers    map[string]int64 // read markers that were not saved
	markersErr error
}

// saveSnapshot saves the state, and the read markers that moved, in the
// background: a snapshot is a Redis round trip, and a room (and the worker
// running it) must not wait for one on every scheduled save while its
// messages queue. One save is in flight at a time; a change meanwhile
// saves again when it is done, so the last save holds the latest state.
func (r *room) saveSnapshot(ctx actor.Context) {
	r.snapshotScheduled, r.countersScheduled = false, false
	if r.conv == nil || r.lease == nil || !r.trusted(ctx) {
		return
	}
	if r.saving != nil {
		r.saveAgain = true
		return
	}
	save := r.snapshotJob()
	if save == nil {
		return
	}
	done := make(chan struct{})
	r.saving = done
	// The goroutine touches no room state; the room waits for it as it
	// stops (writeSnapshot → awaitSave), so it never outlives the room.
	self, root := r.self, r.e.system.Root
	go func() {
		defer close(done)
		root.Send(self, save())
	}()
}

// writeSnapshot saves the state now, and the read markers that moved,
// if this activation still holds the room's lease: as the room stops or
// hands over, after any background save.
func (r *room) writeSnapshot(ctx actor.Context) {
	r.awaitSave()
	r.snapshotScheduled, r.countersScheduled, r.saveAgain = false, false, false
	if r.conv == nil || r.lease == nil || !r.trusted(ctx) {
		return
	}
	if save := r.snapshotJob(); save != nil {
		r.snapshotDone(ctx, save())
	}
}

// snapshotJob takes the state and the read markers to save now, and
// returns the save, which touches no room state; nil when the state does
// not encode.
func (r *room) snapshotJob() func() *snapshotSaved {
	b, err := json.Marshal(r.snapshot())
	if err != nil {
		return nil
	}
	markers := r.markersDirty
	r.markersDirty = map[string]int64{}
	deps, key, lease := r.e.deps, r.key, r.lease
	return func() *snapshotSaved {
		sctx, cancel := context.WithTimeout(context.Background(), deps.StoreTimeout)
		defer cancel()
		out := &snapshotSaved{lease: lease}
		if len(markers) > 0 {
			if err := deps.History.SaveMarkers(sctx, key.tenant, key.conv, markers); err != nil {
				out.markers, out.markersErr = markers, err
			}
		}
		out.err = deps.Snapshots.Save(sctx, key.tenant, key.conv, lease, b)
		return out
	}
}

// snapshotDone takes the outcome of a background save.
func (r *room) snapshotDone(ctx actor.Context, m *snapshotSaved) {
	r.saving = nil
	if m.markersErr != nil {
		r.e.deps.Logger.Warn("read markers not saved", "tenant", r.key.tenant, "conversation", r.key.conv, "err", m.markersErr)
		for user, seq := range m.markers {
			if cur, ok := r.markersDirty[user]; !ok || seq > cur {
				r.markersDirty[user] = seq
			}
		}
	}
	switch {
	case errors.Is(m.err, persistence.ErrFenced):
		if m.lease == r.lease {
			r.fence(ctx, "lease taken by another activation")
		}
		return
	case m.err != nil:
		r.e.deps.Logger.Warn("room snapshot not saved", "tenant", r.key.tenant, "conversation", r.key.conv, "err", m.err)
	}
	if r.saveAgain {
		r.saveAgain = false
		r.saveSnapshot(ctx)
	}
}

// awaitSave waits for a background save in flight, so that a save made
// now lands after it.
func (r *room) awaitSave() {
	if r.saving == nil {
		return
	}
	t := time.NewTimer(r.e.deps.StoreTimeout + time.Second)
	defer t.Stop()
	select {
	case <-r.saving:
	case <-t.C:
	}
	r.saving = nil
}
