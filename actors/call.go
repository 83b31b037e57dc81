package actors

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/transport"
)

// Bounds of one call.
const (
	// maxCallConns bounds the connections in one call.
	maxCallConns = 64
	// maxSignalsPerSecond bounds the signals one participant relays.
	maxSignalsPerSecond = 100
	// callSweepEvery is how often an idle call drops participants whose
	// local connection is gone without a word (a crashed connection actor)
	// or whose node left the cluster.
	callSweepEvery = time.Minute
)

// call is the actor of one WebRTC call (identity tenant/call). It owns the
// participants, relays signalling between them, and runs recording
// consent with its timers (see call_recording.go). A call with no
// participant left ends.
//
// A call runs on the node that owns its key (see call_route.go), its
// participants may be connected to any node. It keeps its state in memory
// only, with no snapshot: when its node dies the call is lost, and when
// the members change so that another node owns its key, it ends (reason
// "moved") once idle.
type call struct {
	e    *Engine
	key  callKey
	self *actor.PID

	started     bool
	passivating bool
	conv        string
	media       string
	startedBy   string
	startedAt   time.Time

	conns   map[string]*callConn     // by connection id
	signals map[string]*signalWindow // by sender user id
	rec     *callRecording           // the requested or running recording
}

// callConn is one connection in the call.
type callConn struct {
	userID   string
	t        target
	joinedAt time.Time
}

// signalWindow counts one participant's signals in the current second.
type signalWindow struct {
	start time.Time
	n     int
}

func newCall(e *Engine, k callKey) *call {
	return &call{e: e, key: k, conns: make(map[string]*callConn), signals: make(map[string]*signalWindow)}
}

// Receive implements actor.Actor.
func (c *call) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.self = ctx.Self()
		ctx.SetReceiveTimeout(callSweepEvery)
	case *actor.ReceiveTimeout:
		c.sweep(ctx)
		ctx.SetReceiveTimeout(callSweepEvery)
	case *membersChanged:
		c.dropDeparted(ctx)
	case *actor.Stopping:
		c.stopping()
	case *pb.CallStart:
		c.start(ctx, m)
	case *pb.CallJoin:
		c.join(m)
	case *pb.CallLeave:
		c.leave(ctx, m.Conn.ConnId, m.Conn, m.Ack, wire.ReasonLeft)
	case *pb.ConnGone:
		c.leave(ctx, m.ConnId, nil, 0, wire.ReasonDisconnected)
	case *pb.CallEnd:
		c.end(ctx, m)
	case *pb.CallSignal:
		c.signal(m)
	case *pb.RecordingRequest:
		c.requestRecording(m)
	case *pb.RecordingConsent:
		c.consent(m)
	case *pb.RecordingStop:
		c.stopRecording(m)
	case *pb.RecordingQuality:
		c.quality(m)
	case *consentExpired:
		c.consentExpired(m)
	}
}

func (c *call) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.e.deps.StoreTimeout)
}

// resolve finds the connection behind ref: directly if it is on this node.
func (c *call) resolve(ref *pb.ConnRef) target {
	t := target{ref: ref}
	if ref.Address == c.e.system.Address() {
		if conn, ok := c.e.deps.Conns.Get(ref.ConnId); ok {
			t.local = conn
		}
	}
	return t
}

// sendFrame sends f to one connection, answering ack; a connection of
// another node gets it through that node's router, in the call's order.
func (c *call) sendFrame(t target, ack uint64, f *transport.Frame) {
	c.e.calls.sendFrame(c.key, t, ack, f)
}

func (c *call) reply(t target, ack uint64, name string, v any) {
	c.sendFrame(t, ack, transport.NewFrame(name, wire.Marshal(v)))
}

func (c *call) fail(t target, ack uint64, code wire.Code, msg string) {
	c.reply(t, ack, wire.EvCallError, wire.CallError{CallID: c.key.call, Code: code, Message: msg})
}

// broadcast sends one event to every connection in the call; the
// connection ackConn gets it as the answer to ack.
func (c *call) broadcast(name string, v any, ackConn string, ack uint64) {
	c.sendEach(transport.NewFrame(name, wire.Marshal(v)), ackConn, ack, func(*callConn) bool { return true })
}

// toUser sends one event to every connection of user in the call.
func (c *call) toUser(user, name string, v any) {
	c.sendEach(transport.NewFrame(name, wire.Marshal(v)), "", 0, func(p *callConn) bool { return p.userID == user })
}

// sendEach sends f to the connections in the call that pick selects: the
// connection ackConn as the answer to ack, this node's directly, and the
// others in one delivery per node.
func (c *call) sendEach(f *transport.Frame, ackConn string, ack uint64, pick func(*callConn) bool) {
	var remote map[string][]string
	for id, p := range c.conns {
		switch {
		case !pick(p):
		case id == ackConn:
			c.sendFrame(p.t, ack, f)
		case p.t.addr() == c.e.system.Address():
			c.sendFrame(p.t, 0, f)
		default:
			if remote == nil {
				remote = map[string][]string{}
			}
			remote[p.t.addr()] = append(remote[p.t.addr()], id)
		}
	}
	for addr, ids := range remote {
		c.e.calls.sendRemote(c.key, addr, ids, 0, f)
	}
}

func (c *call) hasUser(user string) bool {
	for _, p := range c.conns {
		if p.userID == user {
			return true
		}
	}
	return false
}

// participants lists the users in the call by the time they joined.
func (c *call) participants() []wire.CallParticipant {
	first := make(map[string]time.Time, len(c.conns))
	for _, p := range c.conns {
		if at, ok := first[p.userID]; !ok || p.joinedAt.Before(at) {
			first[p.userID] = p.joinedAt
		}
	}
	out := make([]wire.CallParticipant, 0, len(first))
	for u, at := range first {
		out = append(out, wire.CallParticipant{UserID: u, JoinedAt: at.Format(persistence.TimeFormat)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].JoinedAt != out[j].JoinedAt {
			return out[i].JoinedAt < out[j].JoinedAt
		}
		return out[i].UserID < out[j].UserID
	})
	return out
}

// live answers not_found unless the call is running.
func (c *call) live(t target, ack uint64) bool {
	if !c.started || c.passivating {
		c.fail(t, ack, wire.CodeNotFound, "no such call")
		return false
	}
	return true
}

// member returns the sender's connection in the call, or answers not_member.
func (c *call) member(ref *pb.ConnRef, ack uint64) (*callConn, bool) {
	t := c.resolve(ref)
	if !c.live(t, ack) {
		return nil, false
	}
	p, ok := c.conns[ref.ConnId]
	if !ok {
		c.fail(t, ack, wire.CodeNotMember, "not in this call; send call:join first")
	}
	return p, ok
}

// untrackConn forgets a connection's membership in this call, on the
// connection's node.
func (c *call) untrackConn(ref *pb.ConnRef) { c.e.calls.untrackRef(c.key, ref) }

// untrackLocal is untrackConn for a connection of this node only: one
// that left knows it already.
func (c *call) untrackLocal(ref *pb.ConnRef) {
	if ref != nil && ref.Address == c.e.system.Address() {
		c.e.calls.untrack(ref.ConnId, c.key)
	}
}

// authorize checks that user is a participant of conversation conv.
func (c *call) authorize(user, conv string) (*persistence.Conversation, *wire.Error) {
	ctx, cancel := c.storeCtx()
	defer cancel()
	cv, err := c.e.deps.Conversations.Get(ctx, c.key.tenant, conv)
	if errors.Is(err, persistence.ErrNotFound) {
		elsewhere, err := c.e.deps.Conversations.ExistsElsewhere(ctx, c.key.tenant, conv)
		switch {
		case err != nil:
			return nil, wire.Errorf(wire.CodeUnavailable, "conversation lookup failed; try again")
		case elsewhere:
			return nil, wire.Errorf(wire.CodeForbidden, "conversation belongs to another tenant")
		}
		return nil, wire.Errorf(wire.CodeNotMember, "not a member of this conversation")
	}
	if err != nil {
		c.e.deps.Logger.Warn("call authorization failed", "tenant", c.key.tenant, "call", c.key.call, "err", err)
		return nil, wire.Errorf(wire.CodeUnavailable, "conversation lookup failed; try again")
	}
	if cv.Role(user) == "" {
		return nil, wire.Errorf(wire.CodeNotMember, "not a member of this conversation")
	}
	return cv, nil
}

func (c *call) start(ctx actor.Context, m *pb.CallStart) {
	if c.passivating {
		c.e.calls.deliver(c.key, m) // a fresh activation takes it
		return
	}
	t := c.resolve(m.Conn)
	if c.started {
		c.fail(t, m.Ack, wire.CodeInvalidMessage, "a call with this call_id is running; join it or choose another id")
		return
	}
	cv, werr := c.authorize(m.User.UserId, m.ConversationId)
	if werr != nil {
		c.fail(t, m.Ack, werr.Code, werr.Message)
		c.untrackConn(m.Conn)
		c.passivate(ctx)
		return
	}
	now := time.Now().UTC()
	c.started, c.conv, c.media, c.startedBy, c.startedAt = true, cv.ConversationID, m.Media, m.User.UserId, now
	c.conns[m.Conn.ConnId] = &callConn{userID: m.User.UserId, t: t, joinedAt: now}
	c.reply(t, m.Ack, wire.EvCallStarted, wire.CallStarted{
		CallID: c.key.call, ConversationID: c.conv, Media: c.media, StartedBy: c.startedBy,
		StartedAt: now.Format(persistence.TimeFormat), Participants: c.participants(),
	})
}

func (c *call) join(m *pb.CallJoin) {
	t := c.resolve(m.Conn)
	if !c.live(t, m.Ack) {
		c.untrackConn(m.Conn)
		return
	}
	user := m.User.UserId
	change := func() wire.CallParticipantChange {
		ch := wire.CallParticipantChange{CallID: c.key.call, UserID: user, Participants: c.participants()}
		if c.rec != nil {
			ch.RecordingID = c.rec.id
		}
		return ch
	}
	if _, ok := c.conns[m.Conn.ConnId]; ok {
		c.reply(t, m.Ack, wire.EvCallParticipantJoined, change())
		return
	}
	if _, werr := c.authorize(user, c.conv); werr != nil {
		c.fail(t, m.Ack, werr.Code, werr.Message)
		c.untrackConn(m.Conn)
		return
	}
	if len(c.conns) >= maxCallConns {
		c.fail(t, m.Ack, wire.CodeUnavailable, "call is full")
		c.untrackConn(m.Conn)
		return
	}
	newUser := !c.hasUser(user)
	c.conns[m.Conn.ConnId] = &callConn{userID: user, t: t, joinedAt: time.Now().UTC()}
	if !newUser {
		c.reply(t, m.Ack, wire.EvCallParticipantJoined, change())
		c.askAgain(user, t)
		return
	}
	c.broadcast(wire.EvCallParticipantJoined, change(), m.Conn.ConnId, m.Ack)
	c.recordingJoined(user)
}

// leave removes a connection; ref is nil when the connection closed.
func (c *call) leave(ctx actor.Context, connID string, ref *pb.ConnRef, ack uint64, reason string) {
	p, ok := c.conns[connID]
	if !c.started || c.passivating || !ok {
		if ref != nil {
			c.untrackLocal(ref)
			if c.live(c.resolve(ref), ack) {
				c.fail(c.resolve(ref), ack, wire.CodeNotMember, "not in this call")
			}
		}
		return
	}
	delete(c.conns, connID)
	c.untrackLocal(p.t.ref)
	change := wire.CallParticipantChange{CallID: c.key.call, UserID: p.userID, Reason: reason, Participants: c.participants()}
	if ref != nil {
		c.reply(p.t, ack, wire.EvCallParticipantLeft, change)
	}
	if c.hasUser(p.userID) {
		return // the user is still in the call on another connection
	}
	c.broadcast(wire.EvCallParticipantLeft, change, "", 0)
	if len(c.conns) == 0 {
		c.finish(ctx, wire.ReasonEmpty, "", "", 0)
		return
	}
	c.recordingLeft(p.userID)
}

// endRoles may end a call they did not start.
var endRoles = map[string]bool{"owner": true, "admin": true, "moderator": true}

func (c *call) end(ctx actor.Context, m *pb.CallEnd) {
	p, ok := c.member(m.Conn, m.Ack)
	if !ok {
		return
	}
	if p.userID != c.startedBy {
		cv, werr := c.authorize(p.userID, c.conv)
		if werr != nil {
			c.fail(p.t, m.Ack, werr.Code, werr.Message)
			return
		}
		if !endRoles[cv.Role(p.userID)] {
			c.fail(p.t, m.Ack, wire.CodeForbidden, "only who started the call or a conversation owner, admin or moderator may end it; use call:leave")
			return
		}
	}
	c.finish(ctx, wire.ReasonEndedByUser, p.userID, m.Conn.ConnId, m.Ack)
}

// finish ends the call: a recording stops, everyone is told, the actor goes.
func (c *call) finish(ctx actor.Context, reason, by, ackConn string, ack uint64) {
	if c.rec != nil {
		c.endRecording(wire.ReasonCallEnded, "")
	}
	c.broadcast(wire.EvCallEnded, wire.CallEnded{
		CallID: c.key.call, Reason: reason, EndedBy: by, DurationMs: time.Since(c.startedAt).Milliseconds(),
	}, ackConn, ack)
	for _, p := range c.conns {
		c.untrackConn(p.t.ref)
	}
	clear(c.conns)
	c.passivate(ctx)
}

func (c *call) signal(m *pb.CallSignal) {
	p, ok := c.member(m.Conn, m.Ack)
	if !ok {
		return
	}
	switch {
	case m.To == p.userID:
		c.fail(p.t, m.Ack, wire.CodeInvalidMessage, "a signal goes to another participant")
		return
	case !c.hasUser(m.To):
		c.fail(p.t, m.Ack, wire.CodeNotFound, "user "+m.To+" is not in this call")
		return
	}
	now := time.Now()
	w := c.signals[p.userID]
	if w == nil || now.Sub(w.start) >= time.Second {
		w = &signalWindow{start: now}
		c.signals[p.userID] = w
	}
	if w.n++; w.n > maxSignalsPerSecond {
		c.fail(p.t, m.Ack, wire.CodeRateLimited, "too many signals; slow down")
		return
	}
	c.toUser(m.To, wire.EvCallSignal, wire.CallSignalIn{CallID: c.key.call, From: p.userID, Type: m.Type, Payload: m.Payload})
}

// passivate takes the call out of the table and stops it.
func (c *call) passivate(ctx actor.Context) {
	if c.passivating {
		return
	}
	c.passivating = true
	if c.e.calls.remove(c.key, c.self) {
		ctx.Poison(c.self)
	}
}

// stopping runs when the actor stops, also at node shutdown: a recording
// still running is stopped and stored as such.
func (c *call) stopping() {
	if c.rec != nil {
		c.endRecording(wire.ReasonCallEnded, "")
	}
}
