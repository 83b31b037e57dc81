package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
)

// restriction is a ban or a mute; a zero Until is permanent.
type restriction struct {
	Until  time.Time `json:"until,omitzero"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

func (r restriction) active(now time.Time) bool { return r.Until.IsZero() || now.Before(r.Until) }

// snapshotVersion is the format written now. Readers accept every older
// version: a newer caasd reads what an older one wrote.
const snapshotVersion = 1

// snapshot is what a room writes to Redis: enough to come back after a
// restart with the same bans, mutes (with the time each ends), metadata and
// counters. Membership and roles come from the conversation; the sequence
// counter lives in its own Redis key.
type snapshot struct {
	Version      int                    `json:"v"`
	Tenant       string                 `json:"tenant"`
	Conversation string                 `json:"conversation"`
	Name         string                 `json:"name"`
	CreatedAt    time.Time              `json:"created_at"`
	LastActivity time.Time              `json:"last_activity"`
	LastSeq      int64                  `json:"last_seq"`
	Roles        map[string]string      `json:"roles,omitempty"`
	Bans         map[string]restriction `json:"bans,omitempty"`
	Mutes        map[string]restriction `json:"mutes,omitempty"`
	Counters     roomCounters           `json:"counters"`
	// ReadMarkers are each user's last read seq (MongoDB keeps them too).
	ReadMarkers map[string]int64 `json:"read,omitempty"`
	// Online are the connections in the room, so that a new activation on
	// another node keeps serving the members of the nodes still alive.
	Online []onlineRef `json:"online,omitempty"`
}

type onlineRef struct {
	ConnID  string `json:"conn"`
	Address string `json:"addr"`
	ActorID string `json:"actor"`
	UserID  string `json:"user"`
}

type roomCounters struct {
	Messages   int64 `json:"messages"`
	Joins      int64 `json:"joins"`
	Moderation int64 `json:"moderation"`
}

// errSnapshotVersion means the snapshot was written by a newer caasd.
var errSnapshotVersion = errors.New("snapshot version not supported")

func decodeSnapshot(b []byte) (*snapshot, error) {
	var head struct {
		Version int `json:"v"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("decode room snapshot: %w", err)
	}
	switch head.Version {
	case 1:
		var s snapshot
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("decode room snapshot v1: %w", err)
		}
		return &s, nil
	default:
		return nil, fmt.Errorf("%w: %d", errSnapshotVersion, head.Version)
	}
}

// restore loads bans and mutes: from the snapshot if there is one, else by
// replaying the room's moderation history, so a permanent ban outlives an
// expired snapshot. What ended while the room was down is dropped.
func (r *room) restore(ctx context.Context) error {
	now := time.Now()
	r.bans, r.mutes = map[string]restriction{}, map[string]restriction{}
	b, err := r.e.deps.Snapshots.Load(ctx, r.key.tenant, r.key.conv)
	switch {
	case err == nil:
		s, derr := decodeSnapshot(b)
		if derr == nil {
			for u, x := range s.Bans {
				if x.active(now) {
					r.bans[u] = x
				}
			}
			for u, x := range s.Mutes {
				if x.active(now) {
					r.mutes[u] = x
				}
			}
			r.counters, r.lastActivity, r.createdAt = s.Counters, s.LastActivity, s.CreatedAt
			if s.ReadMarkers != nil {
				r.markers = s.ReadMarkers
			}
			r.restoredOnline = s.Online
			return nil
		}
		r.e.deps.Logger.Warn("room snapshot unreadable, replaying moderation history", "tenant", r.key.tenant, "conversation", r.key.conv, "err", derr)
	case !errors.Is(err, persistence.ErrNotFound):
		return err
	}
	hist, err := r.e.deps.Moderation.History(ctx, r.key.tenant, r.key.conv, time.Time{}, 10000, true)
	if err != nil {
		return err
	}
	for _, a := range hist {
		x := restriction{By: a.ActorID, Reason: a.Reason, At: a.At}
		if a.Until != nil {
			x.Until = *a.Until
		}
		switch a.Action {
		case wire.ActionBan:
			r.bans[a.TargetID] = x
		case wire.ActionUnban:
			delete(r.bans, a.TargetID)
		case wire.ActionMute:
			r.mutes[a.TargetID] = x
		case wire.ActionUnmute:
			delete(r.mutes, a.TargetID)
		}
	}
	for u, x := range r.bans {
		if !x.active(now) {
			delete(r.bans, u)
		}
	}
	for u, x := range r.mutes {
		if !x.active(now) {
			delete(r.mutes, u)
		}
	}
	return nil
}

// snapshotDelay is how long changes gather before one snapshot write;
// countersDelay is how long a message's counters and activity time may go
// unsaved. Messages change only those, with every message, and restoring
// them needs no precision: they are saved with the next other change, on
// handover and on passivation, else at most once per countersDelay,
// instead of once per snapshotDelay in a busy room.
const (
	snapshotDelay = 200 * time.Millisecond
	countersDelay = 5 * time.Second
)

// changed marks the state dirty and schedules one snapshot write.
func (r *room) changed() {
	r.lastActivity = time.Now().UTC()
	if r.snapshotScheduled || r.conv == nil {
		return
	}
	r.snapshotScheduled = true
	self, root := r.self, r.e.system.Root
	time.AfterFunc(snapshotDelay, func() { root.Send(self, &snapshotNow{}) })
}

// counted marks that a message changed the counters: a snapshot follows
// within countersDelay.
func (r *room) counted() {
	r.lastActivity = time.Now().UTC()
	if r.snapshotScheduled || r.countersScheduled || r.conv == nil {
		return
	}
	r.countersScheduled = true
	self, root := r.self, r.e.system.Root
	time.AfterFunc(countersDelay, func() { root.Send(self, &snapshotNow{}) })
}

func (r *room) snapshot() *snapshot {
	roles := make(map[string]string, len(r.conv.Participants))
	for _, p := range r.conv.Participants {
		roles[p.UserID] = p.Role
	}
	return &snapshot{
		Version: snapshotVersion, Tenant: r.key.tenant, Conversation: r.key.conv, Name: r.conv.Name,
		CreatedAt: r.createdAt, LastActivity: r.lastActivity, LastSeq: r.lastSeq, Roles: roles,
		Bans: r.bans, Mutes: r.mutes, Counters: r.counters, ReadMarkers: r.markers, Online: r.onlineRefs(),
	}
}

func (r *room) onlineRefs() []onlineRef {
	out := make([]onlineRef, 0, len(r.online))
	for id, m := range r.online {
		out = append(out, onlineRef{ConnID: id, Address: m.conn.addr(), ActorID: m.conn.ref.ActorId, UserID: m.userID})
	}
	return out
}

// restoreOnline brings back the members of a snapshot whose node is alive
// and who are still allowed in; a connection that is gone is dropped by its
// node's delivery actor on the first frame.
func (r *room) restoreOnline() {
	for _, o := range r.restoredOnline {
		if !r.e.place().AliveAddr(o.Address) {
			continue
		}
		role := r.conv.Role(o.UserID)
		if role == "" || r.restricted(o.UserID, false) != nil {
			continue
		}
		if _, ok := r.online[o.ConnID]; ok || len(r.online) >= r.e.deps.Rooms.MaxMembersOnline {
			continue
		}
		t := r.resolve(&pb.ConnRef{ConnId: o.ConnID, Address: o.Address, ActorId: o.ActorID})
		if t.local == nil && o.Address == r.e.system.Address() {
			continue // a connection of this node that is gone
		}
		r.online[o.ConnID] = &member{userID: o.UserID, role: role, conn: t}
		r.e.deps.Metrics.MemberOnline(1)
	}
	r.restoredOnline = nil
}

// scheduleExpiry arms one timer for the restriction that ends first.
func (r *room) scheduleExpiry() {
	if r.expiryTimer != nil {
		r.expiryTimer.Stop()
		r.expiryTimer = nil
	}
	var next time.Time
	for _, m := range []map[string]restriction{r.bans, r.mutes} {
		for _, x := range m {
			if !x.Until.IsZero() && (next.IsZero() || x.Until.Before(next)) {
				next = x.Until
			}
		}
	}
	if next.IsZero() {
		return
	}
	self, root := r.self, r.e.system.Root
	r.expiryTimer = time.AfterFunc(time.Until(next), func() { root.Send(self, &expireNow{}) })
}

// expire lifts every restriction that has ended and tells the room.
func (r *room) expire() {
	now := time.Now()
	lift := func(m map[string]restriction, action, event string) {
		for u, x := range m {
			if x.active(now) {
				continue
			}
			delete(m, u)
			r.broadcast(event, wire.Moderated{Action: action, ConversationID: r.key.conv, UserID: u, Reason: "expired"})
			r.changed()
		}
	}
	lift(r.bans, wire.ActionUnban, wire.EvRoomMemberUnbanned)
	lift(r.mutes, wire.ActionUnmute, wire.EvRoomMemberUnmuted)
	r.scheduleExpiry()
}

// restricted returns the code that refuses userID, if any.
func (r *room) restricted(userID string, sending bool) *wire.Error {
	now := time.Now()
	if x, ok := r.bans[userID]; ok && x.active(now) {
		return wire.Errorf(wire.CodeBanned, banMessage("banned from this room", x))
	}
	if sending {
		if x, ok := r.mutes[userID]; ok && x.active(now) {
			return wire.Errorf(wire.CodeMuted, banMessage("muted in this room", x))
		}
	}
	return nil
}

func banMessage(what string, x restriction) string {
	if x.Until.IsZero() {
		return what
	}
	return what + " until " + x.Until.UTC().Format(time.RFC3339)
}
