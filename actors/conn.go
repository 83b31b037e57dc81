package actors

import (
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/transport"
)

// connActor is one client connection's actor: it decodes and validates the
// client's events, rate-limits them, and turns them into requests to rooms.
// Rooms answer the connection directly (see room.reply).
type connActor struct {
	e    *Engine
	conn transport.Conn
	user *pb.Principal
	ref  *pb.ConnRef
	// rooms are the rooms this connection asked to join and has not left;
	// each is told when the connection goes.
	rooms map[string]struct{}
	// queued counts events on their way to this actor (see session.Event).
	queued atomic.Int32
}

func (a *connActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.ref.ActorId = ctx.Self().Id
		a.rooms = make(map[string]struct{})
	case *inbound:
		a.queued.Add(-1)
		a.handle(m)
	case *pb.Membership:
		if !m.Joined {
			delete(a.rooms, m.ConversationId)
		}
	case *pb.ConnEvent:
		a.conn.Reply(m.Ack, transport.NewFrame(m.Name, m.Data))
	case *actor.Stopping:
		a.e.calls.connGone(a.ref.ConnId)
		for conv := range a.rooms {
			a.e.rooms.send(roomKey{a.user.TenantId, conv}, &pb.ConnGone{ConnId: a.ref.ConnId})
		}
	}
}

func (a *connActor) send(ack uint64, name string, v any) {
	a.sendTo(a.conn, ack, name, v)
}

// sendTo answers on c; it touches no actor state, so goroutines of the
// actor may use it.
func (a *connActor) sendTo(c transport.Conn, ack uint64, name string, v any) {
	c.Reply(ack, transport.NewFrame(name, wire.Marshal(v)))
}

// eventFunc handles one client event on its connection actor.
type eventFunc func(a *connActor, m *inbound)

// events returns what each client event does. Every codec's events land
// here: this table is the one place that decides what an event does.
func events() map[string]eventFunc {
	t := map[string]eventFunc{}
	roomEvents(t)
	moderationEvents(t)
	historyEvents(t)
	callEvents(t)
	return t
}

func (a *connActor) handle(m *inbound) {
	if f, ok := a.e.events[m.name]; ok {
		f(a, m)
		return
	}
	a.send(m.ack, wire.EvError, wire.Error{Code: wire.CodeInvalidMessage, Message: fmt.Sprintf("unknown event %q", m.name)})
}

// roomEvents registers joining, leaving and sending.
func roomEvents(t map[string]eventFunc) {
	t[wire.EvJoinRoom] = (*connActor).joinRoom
	t[wire.EvLeaveRoom] = (*connActor).leaveRoom
	t[wire.EvSendMessage] = (*connActor).sendMessage
}

func (a *connActor) joinRoom(m *inbound) {
	var req wire.JoinRoom
	if err := decode(m.data, &req); err != nil || !wire.ValidID(req.ConversationID) {
		a.send(m.ack, wire.EvRoomError, wire.RoomError{ConversationID: req.ConversationID, Code: wire.CodeInvalidMessage, Message: "joinRoom needs {conversation_id}"})
		return
	}
	if _, ok := a.rooms[req.ConversationID]; !ok && len(a.rooms) >= a.e.deps.Limits.MaxRoomsPerConn {
		a.send(m.ack, wire.EvRoomError, wire.RoomError{ConversationID: req.ConversationID, Code: wire.CodeRateLimited, Message: fmt.Sprintf("a connection may join at most %d rooms", a.e.deps.Limits.MaxRoomsPerConn)})
		return
	}
	a.rooms[req.ConversationID] = struct{}{}
	j := &pb.JoinRoom{User: a.user, Conn: a.ref, Ack: m.ack}
	if req.SinceSeq != nil {
		j.HasSince, j.SinceSeq = true, *req.SinceSeq
	}
	a.e.rooms.send(roomKey{a.user.TenantId, req.ConversationID}, j)
}

func (a *connActor) leaveRoom(m *inbound) {
	var req wire.LeaveRoom
	if err := decode(m.data, &req); err != nil || !wire.ValidID(req.ConversationID) {
		a.send(m.ack, wire.EvRoomError, wire.RoomError{ConversationID: req.ConversationID, Code: wire.CodeInvalidMessage, Message: "leaveRoom needs {conversation_id}"})
		return
	}
	delete(a.rooms, req.ConversationID)
	a.e.rooms.send(roomKey{a.user.TenantId, req.ConversationID}, &pb.LeaveRoom{Conn: a.ref, Ack: m.ack})
}

func (a *connActor) sendMessage(m *inbound) {
	var req wire.SendMessage
	if err := decodeWith(m.data, &req, wire.DecodeSendMessage); err != nil {
		a.reject(m.ack, req, wire.Errorf(wire.CodeInvalidMessage, "sendMessage needs {message_id, conversation_id, content}: "+err.Error()))
		return
	}
	text, werr := validateSend(&req, &a.e.deps.Limits)
	if werr != nil {
		a.reject(m.ack, req, werr)
		return
	}
	if werr := a.e.limiter.Allow(a.user.TenantId+"/"+a.user.UserId, text); werr != nil {
		a.reject(m.ack, req, werr)
		return
	}
	a.e.rooms.send(roomKey{a.user.TenantId, req.ConversationID}, &pb.SendMessage{
		User: a.user, Conn: a.ref, Ack: m.ack, MessageId: req.MessageID, Content: req.Content,
	})
}

func (a *connActor) reject(ack uint64, req wire.SendMessage, werr *wire.Error) {
	a.e.deps.Metrics.MessageRejected(string(werr.Code))
	a.send(ack, wire.EvMessageFailed, wire.MessageFailed{MessageID: req.MessageID, ConversationID: req.ConversationID, Code: werr.Code, Message: werr.Message})
}

// decode parses an event's data object; absent data is an error.
func decode(data []byte, v any) error {
	return decodeWith(data, v, json.Unmarshal)
}

// decodeWith is decode with a decoder of v's type.
func decodeWith[T any](data []byte, v T, dec func([]byte, T) error) error {
	if len(data) == 0 || string(data) == "null" {
		return fmt.Errorf("data is required")
	}
	if err := dec(data, v); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}
