package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
)

// maxHistoryReads bounds history reads running at once on a node.
const maxHistoryReads = 64

// historyEvents registers history:get and message:read.
func historyEvents(t map[string]eventFunc) {
	t[wire.EvHistoryGet] = (*connActor).historyGet
	t[wire.EvMessageRead] = (*connActor).messageRead
}

func (a *connActor) historyGet(m *inbound) {
	var req wire.HistoryGet
	if err := decode(m.data, &req); err != nil {
		a.send(m.ack, wire.EvRoomError, wire.RoomError{Code: wire.CodeInvalidMessage, Message: "history:get needs {conversation_id, before_seq | after_seq, limit}"})
		return
	}
	p := auth.Principal{UserID: a.user.UserId, TenantID: a.user.TenantId}
	conn, ack := a.conn, m.ack
	// The read runs beside the actor: MongoDB may take a while and the
	// connection's other events must not wait for it.
	select {
	case a.e.historySlots <- struct{}{}:
	default:
		a.send(ack, wire.EvRoomError, wire.RoomError{ConversationID: req.ConversationID, Code: wire.CodeRateLimited, Message: errHistoryBusy.Error()})
		return
	}
	a.e.historyWG.Add(1)
	go func() {
		defer a.e.historyWG.Done()
		defer func() { <-a.e.historySlots }()
		ctx, cancel := context.WithTimeout(context.Background(), historyReadTimeout)
		page, err := a.e.History(ctx, p, req)
		cancel()
		if err != nil {
			werr := errToWire(err)
			a.sendTo(conn, ack, wire.EvRoomError, wire.RoomError{ConversationID: req.ConversationID, Code: werr.Code, Message: werr.Message})
			return
		}
		a.sendTo(conn, ack, wire.EvHistoryPage, page)
	}()
}

// historyReadTimeout bounds one history:get. MongoDB answers a page from
// its index in milliseconds, and FerretDB, which scans, in about 85 µs per
// stored message; a store that does not answer must not hold one of the
// engine's few history slots, nor its shutdown, for good.
const historyReadTimeout = 10 * time.Second

func (a *connActor) messageRead(m *inbound) {
	var req wire.MessageRead
	if err := decode(m.data, &req); err != nil || !wire.ValidID(req.ConversationID) || req.Seq < 0 {
		a.send(m.ack, wire.EvRoomError, wire.RoomError{ConversationID: req.ConversationID, Code: wire.CodeInvalidMessage, Message: "message:read needs {conversation_id, seq}"})
		return
	}
	a.e.rooms.send(roomKey{a.user.TenantId, req.ConversationID}, &pb.ReadMarker{User: a.user, Conn: a.ref, Seq: req.Seq})
}

// errToWire turns an error into the wire error a client sees.
func errToWire(err error) wire.Error {
	if er, ok := err.(*ErrRoom); ok {
		return er.Wire
	}
	return wire.Error{Code: wire.CodeUnavailable, Message: "history unavailable; try again"}
}

// History returns one page of a conversation's messages for p: the room
// authorizes it (tenant, membership, bans) and gives what its recent buffer
// holds; MongoDB gives the rest.
func (e *Engine) History(ctx context.Context, p auth.Principal, req wire.HistoryGet) (*wire.HistoryPage, error) {
	if !wire.ValidID(req.ConversationID) {
		return nil, &ErrRoom{Wire: *wire.Errorf(wire.CodeInvalidMessage, "conversation_id is required")}
	}
	if req.Limit <= 0 {
		req.Limit = 50
	}
	if req.Limit > wire.MaxHistoryLimit {
		return nil, &ErrRoom{Wire: *wire.Errorf(wire.CodeInvalidMessage, fmt.Sprintf("limit is at most %d", wire.MaxHistoryLimit))}
	}
	if req.AfterSeq != nil && req.BeforeSeq != 0 {
		return nil, &ErrRoom{Wire: *wire.Errorf(wire.CodeInvalidMessage, "give before_seq or after_seq, not both")}
	}
	before := req.AfterSeq == nil
	seq := req.BeforeSeq
	if !before {
		seq = *req.AfterSeq
	}
	if before && seq <= 0 {
		seq = 1 << 62 // the newest page
	}
	res, err := e.request(roomKey{p.TenantID, req.ConversationID}, &pb.HistoryRequest{
		User: &pb.Principal{UserId: p.UserID, TenantId: p.TenantID}, Before: before, Seq: seq, Limit: int32(req.Limit),
	})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*pb.HistoryReply)
	if !ok {
		return nil, fmt.Errorf("history: unexpected answer %T", res)
	}
	if r.Code != "" {
		return nil, &ErrRoom{Wire: wire.Error{Code: wire.Code(r.Code), Message: r.Message}}
	}
	buffered := make([]wire.MessageNew, 0, len(r.Buffered))
	for _, b := range r.Buffered {
		var m wire.MessageNew
		if err := json.Unmarshal(b, &m); err == nil {
			buffered = append(buffered, m)
		}
	}
	page := &wire.HistoryPage{ConversationID: req.ConversationID}
	limit := req.Limit
	if before {
		msgs := buffered
		if len(msgs) < limit && r.OldestBuffered > 1 {
			upTo := min(seq, r.OldestBuffered)
			stored, err := e.deps.History.Before(ctx, p.TenantID, req.ConversationID, upTo, limit-len(msgs))
			if err != nil {
				return nil, err
			}
			msgs = append(stored, msgs...)
		}
		page.Messages = msgs
		page.HasMore = len(msgs) == limit && msgs[0].Seq > 1
	} else {
		var msgs []wire.MessageNew
		if seq+1 < r.OldestBuffered {
			stored, err := e.deps.History.Range(ctx, p.TenantID, req.ConversationID, seq, r.OldestBuffered, limit)
			if err != nil {
				return nil, err
			}
			msgs = stored
		}
		msgs = append(msgs, buffered[:min(len(buffered), limit-len(msgs))]...)
		page.Messages = msgs
		page.HasMore = len(msgs) == limit && msgs[len(msgs)-1].Seq < r.LastSeq
	}
	if page.Messages == nil {
		page.Messages = []wire.MessageNew{}
	}
	return page, nil
}
