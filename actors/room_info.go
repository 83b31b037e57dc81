package actors

import (
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
)

// RoomView is a room's state as the admin read API shows it.
type RoomView struct {
	ConversationID string              `json:"conversation_id"`
	Node           string              `json:"node"`
	Epoch          int64               `json:"epoch"`
	Name           string              `json:"name"`
	CreatedAt      time.Time           `json:"created_at"`
	LastActivity   time.Time           `json:"last_activity"`
	LastSeq        int64               `json:"last_seq"`
	MembersOnline  int                 `json:"members_online"`
	Connections    int                 `json:"connections"`
	Online         []OnlineMember      `json:"online"`
	Bans           []RestrictionView   `json:"bans"`
	Mutes          []RestrictionView   `json:"mutes"`
	Counters       map[string]int64    `json:"counters"`
	Participants   int                 `json:"participants"`
	Roles          map[string][]string `json:"roles"`
}

// OnlineMember is one online user of a room.
type OnlineMember struct {
	UserID      string `json:"user_id"`
	Role        string `json:"role"`
	Connections int    `json:"connections"`
}

// RestrictionView is a ban or a mute.
type RestrictionView struct {
	UserID string     `json:"user_id"`
	Until  *time.Time `json:"until,omitempty"`
	By     string     `json:"by"`
	Reason string     `json:"reason,omitempty"`
	At     time.Time  `json:"at"`
}

func (r *room) info(ctx actor.Context) {
	if werr := r.load(); werr != nil {
		ctx.Respond(&pb.RoomInfo{Code: string(werr.Code)})
		return
	}
	v := RoomView{
		ConversationID: r.key.conv, Node: r.e.place().NodeID(), Name: r.conv.Name, CreatedAt: r.createdAt, LastActivity: r.lastActivity,
		LastSeq: r.lastSeq, Connections: len(r.online), Participants: len(r.conv.Participants),
		Bans: restrictionViews(r.bans), Mutes: restrictionViews(r.mutes), Roles: map[string][]string{},
		Counters: map[string]int64{"messages": r.counters.Messages, "joins": r.counters.Joins, "moderation": r.counters.Moderation},
	}
	if r.lease != nil {
		v.Epoch = r.lease.Epoch
	}
	per := map[string]*OnlineMember{}
	for _, m := range r.online {
		o, ok := per[m.userID]
		if !ok {
			o = &OnlineMember{UserID: m.userID, Role: m.role}
			per[m.userID] = o
		}
		o.Connections++
	}
	for _, o := range per {
		v.Online = append(v.Online, *o)
	}
	sort.Slice(v.Online, func(i, j int) bool { return v.Online[i].UserID < v.Online[j].UserID })
	v.MembersOnline = len(v.Online)
	for _, p := range r.conv.Participants {
		v.Roles[p.Role] = append(v.Roles[p.Role], p.UserID)
	}
	ctx.Respond(&pb.RoomInfo{Data: wire.Marshal(v)})
}

func restrictionViews(m map[string]restriction) []RestrictionView {
	out := make([]RestrictionView, 0, len(m))
	now := time.Now()
	for u, x := range m {
		if !x.active(now) {
			continue
		}
		v := RestrictionView{UserID: u, By: x.By, Reason: x.Reason, At: x.At}
		if !x.Until.IsZero() {
			until := x.Until
			v.Until = &until
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}
