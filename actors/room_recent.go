package actors

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/transport"
)

// recentMsg is one released message in the room's recent buffer: the
// native encoding of the frame members got, shared, so catching up costs
// no new encoding. The frame itself is not kept: its encoding alone is one
// object without pointers, about 350 bytes for a short message, where the
// frame adds 112 bytes and pointers for the collector to follow, and a
// full buffer holds RecentBufferLen messages in every active room.
type recentMsg struct {
	seq    int64
	native []byte
}

// frame makes the message's frame again, sharing its encoding.
func (m recentMsg) frame() *transport.Frame {
	return transport.NativeFrame(wire.EvMessageNew, m.native)
}

// remember appends a released message, keeping at most RecentBufferLen.
func (r *room) remember(seq int64, f *transport.Frame) {
	if n := r.e.deps.Rooms.RecentBufferLen; len(r.recent) >= n {
		copy(r.recent, r.recent[len(r.recent)-n+1:])
		r.recent = r.recent[:n-1]
	}
	r.recent = append(r.recent, recentMsg{seq: seq, native: f.Native()})
}

// loadRecent fills the buffer from Redis after an activation: what was
// released before a restart can still be caught up on.
func (r *room) loadRecent(ctx context.Context) error {
	entries, err := r.e.deps.Sequencer.Recent(ctx, r.key.tenant, r.key.conv, r.lastSeq)
	if err != nil {
		return err
	}
	r.recent = r.recent[:0]
	for _, e := range entries {
		var m wire.MessageNew
		if json.Unmarshal(e.Body, &m) != nil {
			continue
		}
		m.Seq = e.Seq
		r.remember(e.Seq, transport.NewFrame(wire.EvMessageNew, wire.Marshal(m)))
	}
	return nil
}

// oldestBuffered is the seq of the first buffered message, or lastSeq+1.
func (r *room) oldestBuffered() int64 {
	if len(r.recent) == 0 {
		return r.lastSeq + 1
	}
	return r.recent[0].seq
}

// catchUp sends t every message with seq > since, in order, and reports
// whether it could: a gap above CatchupLimit is left to history paging.
// It runs in the same turn that makes t a member, so the switch to live
// messages neither skips nor repeats a seq.
func (r *room) catchUp(t target, since int64) bool {
	if since >= r.lastSeq {
		return true
	}
	if r.lastSeq-since > int64(r.e.deps.Rooms.CatchupLimit) {
		return false
	}
	if oldest := r.oldestBuffered(); since+1 < oldest {
		ctx, cancel := r.storeCtx()
		stored, err := r.e.deps.History.Range(ctx, r.key.tenant, r.key.conv, since, oldest, r.e.deps.Rooms.CatchupLimit)
		cancel()
		if err != nil {
			r.e.deps.Logger.Warn("catch-up from history failed", "tenant", r.key.tenant, "conversation", r.key.conv, "err", err)
			return false
		}
		for _, m := range stored {
			r.deliver(t, transport.NewFrame(wire.EvMessageNew, wire.Marshal(m)))
		}
	}
	for _, m := range r.recent {
		if m.seq > since && m.seq <= r.lastSeq {
			r.deliver(t, m.frame())
		}
	}
	return true
}

// readMarker moves a user's read marker forward and tells the room.
func (r *room) readMarker(m *pb.ReadMarker) {
	if werr := r.load(); werr != nil {
		r.reply(r.resolve(m.Conn), 0, wire.EvRoomError, wire.RoomError{ConversationID: r.key.conv, Code: werr.Code, Message: werr.Message})
		return
	}
	if r.conv.Role(m.User.UserId) == "" {
		r.reply(r.resolve(m.Conn), 0, wire.EvRoomError, wire.RoomError{ConversationID: r.key.conv, Code: wire.CodeNotMember, Message: "not a member of this conversation"})
		return
	}
	seq := min(m.Seq, r.lastSeq)
	if seq <= r.markers[m.User.UserId] {
		return // markers only move forward
	}
	r.markers[m.User.UserId] = seq
	r.markersDirty[m.User.UserId] = seq
	r.changed()
	r.broadcast(wire.EvRoomRead, wire.MessageRead{ConversationID: r.key.conv, UserID: m.User.UserId, Seq: seq})
}

// loadMarkers reads the read markers from MongoDB when no snapshot had them.
func (r *room) loadMarkers(ctx context.Context) error {
	if r.markers != nil {
		return nil
	}
	m, err := r.e.deps.History.Markers(ctx, r.key.tenant, r.key.conv)
	if err != nil {
		return err
	}
	r.markers = m
	return nil
}

// history authorizes a history read and hands over what the buffer holds.
func (r *room) history(ctx actor.Context, m *pb.HistoryRequest) {
	if werr := r.load(); werr != nil {
		ctx.Respond(&pb.HistoryReply{Code: string(werr.Code), Message: werr.Message})
		return
	}
	if r.conv.Role(m.User.UserId) == "" {
		ctx.Respond(&pb.HistoryReply{Code: string(wire.CodeNotMember), Message: "not a member of this conversation"})
		return
	}
	if werr := r.restricted(m.User.UserId, false); werr != nil {
		ctx.Respond(&pb.HistoryReply{Code: string(werr.Code), Message: werr.Message})
		return
	}
	reply := &pb.HistoryReply{OldestBuffered: r.oldestBuffered(), LastSeq: r.lastSeq}
	var sel []recentMsg
	for _, x := range r.recent {
		if x.seq > r.lastSeq {
			break
		}
		if m.Before && x.seq < m.Seq {
			sel = append(sel, x)
		} else if !m.Before && x.seq > m.Seq && len(sel) < int(m.Limit) {
			sel = append(sel, x)
		}
	}
	if m.Before && len(sel) > int(m.Limit) {
		sel = sel[len(sel)-int(m.Limit):]
	}
	for _, x := range sel {
		reply.Buffered = append(reply.Buffered, x.frame().Data)
		reply.BufferedSeq = append(reply.BufferedSeq, x.seq)
	}
	ctx.Respond(reply)
}

// errHistoryBusy means too many history reads run at once on this node.
var errHistoryBusy = errors.New("too many history requests; try again")
