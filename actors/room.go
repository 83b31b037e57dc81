package actors

import (
	"context"
	"errors"
	"time"

	"github.com/IBM/sarama"
	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/transport"
)

// Bounds of one room's send path.
const (
	maxRoomInflight  = 20000
	produceRetryFor  = 30 * time.Second
	produceRetryWait = 300 * time.Millisecond
)

// room is the actor of one conversation (identity tenant/conversation). It
// owns the online members and the message sequence: it gives each message
// its seq, sends it to Kafka keyed by conversation, and fans it out to the
// members in seq order once Kafka has it.
type room struct {
	e    *Engine
	key  roomKey
	self *actor.PID

	conv    *persistence.Conversation
	missing *wire.Error // the conversation does not exist for this tenant
	lastSeq int64       // highest seq released to members

	online map[string]*member

	bans, mutes       map[string]restriction
	typing            map[string]time.Time
	counters          roomCounters
	createdAt         time.Time
	lastActivity      time.Time
	snapshotScheduled bool
	saving            chan struct{} // closed when the background save ends
	saveAgain         bool          // the state changed while saving
	countersScheduled bool
	expiryTimer       *time.Timer

	lease          *persistence.Lease
	headers        []sarama.RecordHeader // epochHeaders of headersLease
	headersLease   *persistence.Lease
	recordKey      string // the Kafka key of the room's messages; set on first use
	restoredOnline []onlineRef
	renewTimer     *time.Timer
	handingOver    bool

	recent       []recentMsg
	markers      map[string]int64 // user → last read seq; nil until loaded
	markersDirty map[string]int64

	batch       []*pb.SendMessage
	assigning   *assignment // the batch waiting for its seqs
	inflight    []*outMsg   // in seq order
	byID        map[string]*outMsg
	passivating bool
	// releaseQueued: a releaseNow is in the mailbox, behind the Kafka
	// answers that came in before it, so that they go out together.
	releaseQueued bool
	releasing     []*transport.Frame // release's scratch
	// recentTTLAt is when a batch of this activation last set the Redis
	// recent list's TTL (see recentRefreshEvery).
	recentTTLAt time.Time
}

// member is one online connection of the room.
type member struct {
	userID string
	role   string
	conn   target
}

// target addresses a connection: directly when it is on this node, so that
// every frame to it goes through one queue in order; else through the
// delivery actor of its node, which keeps the room's order too.
type target struct {
	ref   *pb.ConnRef
	local transport.Conn
}

// pid is the connection's actor. Built when asked for: a target lives as
// long as its member or its message awaiting confirmation, and only a
// membership change is sent to the actor itself.
func (t target) pid() *actor.PID { return actor.NewPID(t.ref.Address, t.ref.ActorId) }

// addr is the actor address of the connection's node.
func (t target) addr() string { return t.ref.Address }

type outMsg struct {
	seq      int64
	id       string
	sender   target
	ack      uint64
	extra    []waiter
	rec      *persistence.Record
	frame    *transport.Frame
	first    time.Time
	acked    bool
	failed   bool
	replay   bool   // a resend of an id seen before: no fan-out
	body     []byte // message:new data without seq, as in the recent list
	conv     string
	senderID string
}

type waiter struct {
	t   target
	ack uint64
}

// Room-internal messages.
type (
	produced struct {
		id  string
		err error
	}
	reproduce   struct{ id string }
	releaseNow  struct{}
	snapshotNow struct{}
	expireNow   struct{}
)

func newRoom(e *Engine, k roomKey) *room {
	return &room{
		e: e, key: k, online: make(map[string]*member), byID: make(map[string]*outMsg),
		bans: map[string]restriction{}, mutes: map[string]restriction{}, typing: map[string]time.Time{},
		markersDirty: map[string]int64{},
	}
}

func (r *room) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.self = ctx.Self()
		ctx.SetReceiveTimeout(r.e.deps.RoomIdle)
		r.load()
	case *actor.ReceiveTimeout:
		r.maybePassivate(ctx)
		ctx.SetReceiveTimeout(r.e.deps.RoomIdle)
	case *pb.JoinRoom:
		if r.forward(m) {
			return
		}
		r.join(ctx, m)
	case *pb.LeaveRoom:
		if r.forward(m) {
			return
		}
		r.leave(ctx, m.Conn, m.Ack)
	case *pb.ConnGone:
		if mem, ok := r.online[m.ConnId]; ok {
			delete(r.online, m.ConnId)
			r.e.deps.Metrics.MemberOnline(-1)
			r.presenceLeft(mem.userID)
		}
	case *pb.SendMessage:
		if r.forward(m) {
			return
		}
		r.enqueue(ctx, m)
	case *assignment:
		r.assigned(ctx, m)
	case *produced:
		r.onProduced(ctx, m)
	case *releaseNow:
		r.releaseQueued = false
		r.release()
		if r.handingOver {
			r.handover(ctx)
		}
	case *reproduce:
		r.resend(ctx, m.id)
	case *pb.Invalidate:
		r.reload(ctx)
	case *pb.Moderate:
		if r.forward(m) {
			return
		}
		r.moderate(ctx, m)
	case *pb.Typing:
		if r.forward(m) {
			return
		}
		r.typingEvent(m)
	case *pb.RoomInfoRequest:
		r.info(ctx)
	case *pb.ReadMarker:
		if r.forward(m) {
			return
		}
		r.readMarker(m)
	case *pb.HistoryRequest:
		if r.forward(m) {
			return
		}
		r.history(ctx, m)
	case *snapshotNow:
		r.saveSnapshot(ctx)
	case *snapshotSaved:
		r.snapshotDone(ctx, m)
	case *expireNow:
		r.expire()
	case *leaseLost:
		r.fence(ctx, "lease taken by another activation")
	case *handoverNow:
		r.handover(ctx)
	case *actor.Stopping:
		if r.expiryTimer != nil {
			r.expiryTimer.Stop()
		}
		r.release() // what Kafka has goes out, whether or not its releaseNow is still queued
		r.finishSends(ctx)
		r.writeSnapshot(ctx)
		r.releaseLease()
	}
}

// forward hands a request that reached a passivating room to a fresh
// activation, so no request is lost to passivation.
func (r *room) forward(msg any) bool {
	if !r.passivating && !r.handingOver {
		return false
	}
	r.e.rooms.send(r.key, msg)
	return true
}

func (r *room) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.e.deps.StoreTimeout)
}

// load reads the conversation and the room's sequence counter.
func (r *room) load() *wire.Error {
	if r.conv != nil {
		return nil
	}
	if r.missing != nil {
		return r.missing
	}
	if r.e.draining.Load() {
		return errRoomDraining
	}
	ctx, cancel := r.storeCtx()
	defer cancel()
	conv, err := r.e.deps.Conversations.Get(ctx, r.key.tenant, r.key.conv)
	if errors.Is(err, persistence.ErrNotFound) {
		elsewhere, err := r.e.deps.Conversations.ExistsElsewhere(ctx, r.key.tenant, r.key.conv)
		if err != nil {
			return wire.Errorf(wire.CodeUnavailable, "conversation lookup failed; try again")
		}
		if elsewhere {
			r.missing = wire.Errorf(wire.CodeForbidden, "conversation belongs to another tenant")
		} else {
			r.missing = wire.Errorf(wire.CodeNotMember, "not a member of this conversation")
		}
		return r.missing
	}
	if err != nil {
		r.e.deps.Logger.Warn("room load failed", "tenant", r.key.tenant, "conversation", r.key.conv, "err", err)
		return wire.Errorf(wire.CodeUnavailable, "conversation lookup failed; try again")
	}
	if werr := r.acquire(); werr != nil {
		return werr
	}
	seq, err := r.e.deps.Sequencer.Init(ctx, r.key.tenant, r.key.conv, func(ctx context.Context) (int64, error) {
		return r.e.deps.Conversations.MaxSeq(ctx, r.key.tenant, r.key.conv)
	})
	if err != nil {
		r.e.deps.Logger.Warn("room seq init failed", "tenant", r.key.tenant, "conversation", r.key.conv, "err", err)
		return wire.Errorf(wire.CodeUnavailable, "room state unavailable; try again")
	}
	if err := r.restore(ctx); err != nil {
		r.e.deps.Logger.Warn("room state restore failed", "tenant", r.key.tenant, "conversation", r.key.conv, "err", err)
		return wire.Errorf(wire.CodeUnavailable, "room state unavailable; try again")
	}
	if r.createdAt.IsZero() {
		r.createdAt = conv.CreatedAt
	}
	r.lastSeq = seq
	if err := r.loadRecent(ctx); err != nil {
		r.e.deps.Logger.Warn("room recent messages unavailable", "tenant", r.key.tenant, "conversation", r.key.conv, "err", err)
		return wire.Errorf(wire.CodeUnavailable, "room state unavailable; try again")
	}
	if err := r.loadMarkers(ctx); err != nil {
		r.e.deps.Logger.Warn("read markers unavailable", "tenant", r.key.tenant, "conversation", r.key.conv, "err", err)
		return wire.Errorf(wire.CodeUnavailable, "room state unavailable; try again")
	}
	r.conv = conv
	r.restoreOnline()
	r.scheduleExpiry()
	r.changed()
	return nil
}

// resolve finds the connection behind ref: directly if it is on this node.
func (r *room) resolve(ref *pb.ConnRef) target {
	t := target{ref: ref}
	if ref.Address == r.e.system.Address() {
		if c, ok := r.e.deps.Conns.Get(ref.ConnId); ok {
			t.local = c
		}
	}
	return t
}

// reply sends one event to one connection. It touches no room state, so
// the tracker's goroutine uses it too.
func (r *room) reply(t target, ack uint64, name string, v any) {
	data := wire.Marshal(v)
	if t.local != nil {
		t.local.Reply(ack, transport.NewFrame(name, data))
		return
	}
	r.e.system.Root.Send(actor.NewPID(t.addr(), deliveryName), &pb.NodeDeliver{
		Tenant: r.key.tenant, Conversation: r.key.conv, ConnIds: []string{t.ref.ConnId}, Name: name, Data: data, Ack: ack,
	})
}

func (r *room) membership(t target, joined bool) {
	r.e.system.Root.Send(t.pid(), &pb.Membership{ConversationId: r.key.conv, Joined: joined})
}

func (r *room) join(ctx actor.Context, m *pb.JoinRoom) {
	t := r.resolve(m.Conn)
	refuse := func(werr *wire.Error) {
		r.reply(t, m.Ack, wire.EvRoomError, wire.RoomError{ConversationID: r.key.conv, Code: werr.Code, Message: werr.Message})
		r.membership(t, false)
	}
	if werr := r.load(); werr != nil {
		refuse(werr)
		r.maybePassivate(ctx)
		return
	}
	role := r.conv.Role(m.User.UserId)
	if role == "" {
		refuse(wire.Errorf(wire.CodeNotMember, "not a member of this conversation"))
		return
	}
	if werr := r.restricted(m.User.UserId, false); werr != nil {
		refuse(werr)
		return
	}
	_, already := r.online[m.Conn.ConnId]
	if !already {
		if len(r.online) >= r.e.deps.Rooms.MaxMembersOnline {
			refuse(wire.Errorf(wire.CodeUnavailable, "room is full"))
			return
		}
		r.online[m.Conn.ConnId] = &member{userID: m.User.UserId, role: role, conn: t}
		r.e.deps.Metrics.MemberOnline(1)
		r.counters.Joins++
		r.changed()
	}
	lastRead := min(r.markers[m.User.UserId], r.lastSeq)
	joined := wire.RoomJoined{
		ConversationID: r.key.conv, Role: role, Members: r.members(), LastSeq: r.lastSeq,
		LastReadSeq: lastRead, Unread: r.lastSeq - lastRead,
	}
	if !m.HasSince {
		r.reply(t, m.Ack, wire.EvRoomJoined, joined)
	} else {
		// room:joined goes first, then the missed messages, in this turn.
		recovered := m.SinceSeq >= r.lastSeq || r.lastSeq-m.SinceSeq <= int64(r.e.deps.Rooms.CatchupLimit)
		joined.Recovered = &recovered
		r.reply(t, m.Ack, wire.EvRoomJoined, joined)
		if recovered {
			r.catchUp(t, m.SinceSeq)
		}
	}
	if !already {
		r.presenceJoined(m.Conn.ConnId, m.User.UserId)
	}
}

// members lists the participants with whether each is online.
func (r *room) members() []wire.Member {
	online := make(map[string]bool, len(r.online))
	for _, m := range r.online {
		online[m.userID] = true
	}
	out := make([]wire.Member, 0, len(r.conv.Participants))
	for _, p := range r.conv.Participants {
		out = append(out, wire.Member{UserID: p.UserID, Role: p.Role, Online: online[p.UserID]})
	}
	return out
}

func (r *room) leave(ctx actor.Context, ref *pb.ConnRef, ack uint64) {
	t := r.resolve(ref)
	mem, ok := r.online[ref.ConnId]
	if ok {
		delete(r.online, ref.ConnId)
		r.e.deps.Metrics.MemberOnline(-1)
	}
	r.reply(t, ack, wire.EvRoomLeft, wire.RoomLeft{ConversationID: r.key.conv})
	if ok {
		r.presenceLeft(mem.userID)
	}
}

// maybePassivate stops an idle room: no member online, nothing in flight.
func (r *room) maybePassivate(ctx actor.Context) {
	if r.passivating || len(r.online) > 0 || len(r.batch) > 0 || r.assigning != nil || len(r.byID) > 0 {
		return
	}
	r.stop(ctx)
}

// reload re-reads the conversation after it changed: members who are no
// longer participants leave; a deleted conversation closes the room.
func (r *room) reload(ctx actor.Context) {
	r.conv, r.missing = nil, nil
	werr := r.load()
	for id, m := range r.online {
		role := ""
		if werr == nil {
			role = r.conv.Role(m.userID)
		} else if werr.Code == wire.CodeUnavailable {
			return // keep members; the next request retries the load
		}
		if role != "" {
			m.role = role
			continue
		}
		delete(r.online, id)
		r.e.deps.Metrics.MemberOnline(-1)
		reason := "removed from the conversation"
		if werr != nil {
			reason = "conversation deleted"
		}
		r.reply(m.conn, 0, wire.EvRoomLeft, struct {
			ConversationID string `json:"conversation_id"`
			Reason         string `json:"reason"`
		}{r.key.conv, reason})
		r.membership(m.conn, false)
	}
	if werr != nil {
		// The conversation is gone: so is the room's state.
		sctx, cancel := r.storeCtx()
		_ = r.e.deps.Snapshots.Delete(sctx, r.key.tenant, r.key.conv)
		cancel()
		r.bans, r.mutes = map[string]restriction{}, map[string]restriction{}
		r.maybePassivate(ctx)
	}
}
