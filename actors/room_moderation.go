package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/transport"
)

// Ranks: owner > admin > moderator > member. The tenant's admin API acts
// between owner and admin: above every room admin, never on the owner.
var ranks = map[string]int{"owner": 40, "admin": 30, "moderator": 20, "member": 10}

const adminAPIRank = 35

// moderate applies one moderation action after checking ranks, records it
// in the audit trail first, and tells the room and the actor.
func (r *room) moderate(ctx actor.Context, m *pb.Moderate) {
	var t target
	if m.Conn != nil {
		t = r.resolve(m.Conn)
	}
	fail := func(code wire.Code, msg string) {
		if m.ViaAdmin {
			ctx.Respond(&pb.ModerateResult{Code: string(code), Message: msg})
			return
		}
		r.reply(t, m.Ack, wire.EvRoomError, wire.RoomError{ConversationID: r.key.conv, Code: code, Message: msg})
	}
	if werr := r.load(); werr != nil {
		fail(werr.Code, werr.Message)
		return
	}
	actorRank := adminAPIRank
	if !m.ViaAdmin {
		role := r.conv.Role(m.User.UserId)
		if role == "" {
			fail(wire.CodeNotMember, "not a member of this conversation")
			return
		}
		actorRank = ranks[role]
	}
	targetRole := r.conv.Role(m.Target)
	switch {
	case targetRole == "":
		fail(wire.CodeNotMember, "the target is not a member of this conversation")
		return
	case targetRole == "owner":
		fail(wire.CodeForbidden, "nobody can moderate the owner")
		return
	case actorRank < ranks["moderator"]:
		fail(wire.CodeForbidden, "moderation needs the moderator role or higher")
		return
	case actorRank <= ranks[targetRole]:
		fail(wire.CodeForbidden, "a "+targetRole+" can be moderated only by a higher rank")
		return
	}
	now := time.Now().UTC()
	rec := &persistence.ModerationAction{
		TenantID: r.key.tenant, ConversationID: r.key.conv, Action: m.Action, ActorID: m.User.UserId,
		TargetID: m.Target, Reason: m.Reason, At: now, Via: "socket",
	}
	if m.ViaAdmin {
		rec.Via = "admin_api"
	}
	x := restriction{By: m.User.UserId, Reason: m.Reason, At: now}
	if m.DurationS > 0 && (m.Action == wire.ActionBan || m.Action == wire.ActionMute) {
		x.Until = now.Add(time.Duration(m.DurationS) * time.Second)
		rec.DurationS, rec.Until = m.DurationS, &x.Until
	}
	sctx, cancel := r.storeCtx()
	err := r.e.deps.Moderation.Record(sctx, rec)
	cancel()
	if err != nil {
		r.e.deps.Logger.Warn("moderation not recorded", "tenant", r.key.tenant, "conversation", r.key.conv, "err", err)
		fail(wire.CodeUnavailable, "the audit trail is unavailable; nothing was changed")
		return
	}
	ev := wire.Moderated{Action: m.Action, ConversationID: r.key.conv, UserID: m.Target, By: m.User.UserId, DurationS: rec.DurationS, Reason: m.Reason}
	if !x.Until.IsZero() {
		ev.Until = x.Until.Format(time.RFC3339Nano)
	}
	switch m.Action {
	case wire.ActionKick:
		r.broadcast(wire.EvRoomMemberKicked, ev)
		r.evict(m.Target)
	case wire.ActionBan:
		r.bans[m.Target] = x
		r.broadcast(wire.EvRoomMemberBanned, ev)
		r.evict(m.Target)
	case wire.ActionUnban:
		delete(r.bans, m.Target)
		r.broadcast(wire.EvRoomMemberUnbanned, ev)
	case wire.ActionMute:
		r.mutes[m.Target] = x
		r.broadcast(wire.EvRoomMemberMuted, ev)
	case wire.ActionUnmute:
		delete(r.mutes, m.Target)
		r.broadcast(wire.EvRoomMemberUnmuted, ev)
	}
	r.counters.Moderation++
	r.e.deps.Metrics.ModerationAction(m.Action)
	r.scheduleExpiry()
	r.changed()
	if m.ViaAdmin {
		ctx.Respond(&pb.ModerateResult{Data: wire.Marshal(ev)})
		return
	}
	r.reply(t, m.Ack, wire.EvRoomModerated, ev)
}

// evict takes every connection of userID out of the room.
func (r *room) evict(userID string) {
	for id, m := range r.online {
		if m.userID != userID {
			continue
		}
		delete(r.online, id)
		r.e.deps.Metrics.MemberOnline(-1)
		r.membership(m.conn, false)
	}
	r.presenceLeft(userID)
}

// broadcast sends one event to every online member.
func (r *room) broadcast(name string, v any) {
	r.fanout(transport.NewFrame(name, wire.Marshal(v)))
}

// broadcastExcept sends one event to every online member but connID.
func (r *room) broadcastExcept(connID, name string, v any) {
	f := transport.NewFrame(name, wire.Marshal(v))
	for id, m := range r.online {
		if id != connID {
			r.deliver(m.conn, f)
		}
	}
}

// online tells whether userID has a connection in the room.
func (r *room) userOnline(userID string) bool {
	for _, m := range r.online {
		if m.userID == userID {
			return true
		}
	}
	return false
}

// presenceJoined announces userID's first connection.
func (r *room) presenceJoined(connID, userID string) {
	for id, m := range r.online {
		if id != connID && m.userID == userID {
			return
		}
	}
	r.broadcastExcept(connID, wire.EvRoomMemberJoined, wire.Presence{ConversationID: r.key.conv, UserID: userID})
}

// presenceLeft announces that userID's last connection left.
func (r *room) presenceLeft(userID string) {
	if r.userOnline(userID) {
		return
	}
	delete(r.typing, userID)
	r.broadcast(wire.EvRoomMemberLeft, wire.Presence{ConversationID: r.key.conv, UserID: userID})
}

// typingInterval bounds typing indicators per user and room.
const typingInterval = time.Second

// typingEvent relays an ephemeral typing indicator to the other members.
func (r *room) typingEvent(m *pb.Typing) {
	if werr := r.load(); werr != nil {
		r.reply(r.resolve(m.Conn), 0, wire.EvRoomError, wire.RoomError{ConversationID: r.key.conv, Code: werr.Code, Message: werr.Message})
		return
	}
	mem, ok := r.online[m.Conn.ConnId]
	if !ok {
		r.reply(r.resolve(m.Conn), 0, wire.EvRoomError, wire.RoomError{ConversationID: r.key.conv, Code: wire.CodeNotMember, Message: "join the room before typing"})
		return
	}
	now := time.Now()
	if last, ok := r.typing[mem.userID]; ok && now.Sub(last) < typingInterval {
		return // rate limited: silently dropped, it is ephemeral
	}
	if r.restricted(mem.userID, true) != nil {
		return
	}
	r.typing[mem.userID] = now
	r.broadcastExcept(m.Conn.ConnId, wire.EvRoomTyping, wire.Typing{ConversationID: r.key.conv, UserID: mem.userID})
}
