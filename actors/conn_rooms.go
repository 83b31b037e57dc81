package actors

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
)

// moderationEvents registers the moderation and typing events.
func moderationEvents(t map[string]eventFunc) {
	for ev, action := range map[string]string{
		wire.EvRoomKick: wire.ActionKick, wire.EvRoomBan: wire.ActionBan, wire.EvRoomUnban: wire.ActionUnban,
		wire.EvRoomMute: wire.ActionMute, wire.EvRoomUnmute: wire.ActionUnmute,
	} {
		t[ev] = func(a *connActor, m *inbound) { a.moderate(m, action) }
	}
	t[wire.EvTyping] = (*connActor).typing
}

// validateModeration checks a moderation request's fields.
func validateModeration(req *wire.Moderate) *wire.Error {
	switch {
	case !wire.ValidID(req.ConversationID):
		return wire.Errorf(wire.CodeInvalidMessage, "conversation_id is required")
	case !wire.ValidID(req.UserID):
		return wire.Errorf(wire.CodeInvalidMessage, "user_id is required")
	case req.DurationS < 0 || req.DurationS > wire.MaxModerationDurationS:
		return wire.Errorf(wire.CodeInvalidMessage, fmt.Sprintf("duration_s must be 0 (permanent) to %d", wire.MaxModerationDurationS))
	case utf8.RuneCountInString(req.Reason) > wire.MaxReasonLen:
		return wire.Errorf(wire.CodeInvalidMessage, fmt.Sprintf("reason is limited to %d characters", wire.MaxReasonLen))
	}
	switch req.Action {
	case wire.ActionKick, wire.ActionBan, wire.ActionUnban, wire.ActionMute, wire.ActionUnmute:
	default:
		return wire.Errorf(wire.CodeInvalidMessage, "action must be kick, ban, unban, mute or unmute")
	}
	return nil
}

func (a *connActor) moderate(m *inbound, action string) {
	var req wire.Moderate
	if err := decode(m.data, &req); err != nil {
		a.send(m.ack, wire.EvRoomError, wire.RoomError{Code: wire.CodeInvalidMessage, Message: "needs {conversation_id, user_id, duration_s?, reason?}"})
		return
	}
	req.Action = action
	if werr := validateModeration(&req); werr != nil {
		a.send(m.ack, wire.EvRoomError, wire.RoomError{ConversationID: req.ConversationID, Code: werr.Code, Message: werr.Message})
		return
	}
	a.e.rooms.send(roomKey{a.user.TenantId, req.ConversationID}, &pb.Moderate{
		User: a.user, Conn: a.ref, Ack: m.ack, Action: action, Target: req.UserID, DurationS: req.DurationS, Reason: req.Reason,
	})
}

func (a *connActor) typing(m *inbound) {
	var req wire.Typing
	if err := decode(m.data, &req); err != nil || !wire.ValidID(req.ConversationID) {
		a.send(m.ack, wire.EvRoomError, wire.RoomError{ConversationID: req.ConversationID, Code: wire.CodeInvalidMessage, Message: "typing needs {conversation_id}"})
		return
	}
	a.e.rooms.send(roomKey{a.user.TenantId, req.ConversationID}, &pb.Typing{User: a.user, Conn: a.ref})
}

// adminTimeout bounds an admin request to a room.
const adminTimeout = 5 * time.Second

// Moderate applies a moderation action from the tenant's admin API and
// returns the room:moderated data.
func (e *Engine) Moderate(ctx context.Context, p auth.Principal, req wire.Moderate) ([]byte, error) {
	if werr := validateModeration(&req); werr != nil {
		return nil, &ErrRoom{Wire: *werr}
	}
	msg := &pb.Moderate{
		User:   &pb.Principal{UserId: p.UserID, TenantId: p.TenantID, Roles: p.Roles},
		Action: req.Action, Target: req.UserID, DurationS: req.DurationS, Reason: req.Reason, ViaAdmin: true,
	}
	res, err := e.request(roomKey{p.TenantID, req.ConversationID}, msg)
	if err != nil {
		return nil, err
	}
	r, ok := res.(*pb.ModerateResult)
	if !ok {
		return nil, fmt.Errorf("moderate: unexpected answer %T", res)
	}
	if r.Code != "" {
		return nil, &ErrRoom{Wire: wire.Error{Code: wire.Code(r.Code), Message: r.Message}}
	}
	return r.Data, nil
}

// RoomInfo returns a room's state (activating it if needed).
func (e *Engine) RoomInfo(ctx context.Context, tenant, conv string) ([]byte, error) {
	res, err := e.request(roomKey{tenant, conv}, &pb.RoomInfoRequest{})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*pb.RoomInfo)
	if !ok {
		return nil, fmt.Errorf("room info: unexpected answer %T", res)
	}
	if r.Code != "" {
		return nil, &ErrRoom{Wire: wire.Error{Code: wire.Code(r.Code), Message: "no such room"}}
	}
	return r.Data, nil
}

// ActiveRoomsOf returns the states of the tenant's active rooms on this node.
func (e *Engine) ActiveRoomsOf(ctx context.Context, tenant string, limit int) ([][]byte, error) {
	var out [][]byte
	for _, conv := range e.rooms.convsOf(tenant, limit) {
		b, err := e.RoomInfo(ctx, tenant, conv)
		var er *ErrRoom
		if errors.As(err, &er) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// request asks a room and waits for its answer.
func (e *Engine) request(k roomKey, msg any) (any, error) {
	f := e.rooms.request(k, msg, adminTimeout)
	res, err := f.Result()
	if err != nil {
		return nil, fmt.Errorf("room %s: %w", k.conv, err)
	}
	return res, nil
}
