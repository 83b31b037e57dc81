package actors

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/transport"
)

// Engine runs the actor system of one node: it opens a connection actor per
// client connection (it is the transport's Handler) and places room actors.
type Engine struct {
	deps    Deps
	system  *actor.ActorSystem
	limiter *RateLimiter
	rooms   *roomTable
	calls   *callTable
	events  map[string]eventFunc

	historySlots chan struct{}
	historyWG    sync.WaitGroup

	remote     *remote.Remote
	keeper     *leaseKeeper
	dispatcher *workerDispatcher
	placement  atomic.Pointer[Placement]
	// draining is set once Drain begins: from then on a room that has
	// not loaded refuses what it is asked (see room.load).
	draining atomic.Bool
}

// NewEngine starts an actor system with deps.
func NewEngine(deps Deps) *Engine {
	if deps.RoomIdle <= 0 {
		deps.RoomIdle = 2 * time.Minute
	}
	if deps.StoreTimeout <= 0 {
		deps.StoreTimeout = 3 * time.Second
	}
	logger := deps.Logger.With("component", "actors")
	libLogger := slog.New(libHandler{next: logger.Handler()}).With("lib", "protoactor")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return libLogger
	}))
	e := &Engine{deps: deps, system: system, limiter: NewRateLimiter(deps.Limits, 1_000_000), events: events(), historySlots: make(chan struct{}, maxHistoryReads)}
	e.rooms = newRoomTable(e)
	e.dispatcher = newWorkerDispatcher(mailboxQueue)
	e.keeper = newLeaseKeeper(e)
	e.calls = newCallTable(e)
	e.SetPlacement(localPlacement{id: deps.NodeID, addr: system.Address()})
	return e
}

// Start spawns the node's well-known actors; call it after StartRemote
// (if any) and SetPlacement.
func (e *Engine) Start() { e.spawnNodeActors() }

// Run drives the engine's timers (rate-limit sweeps, lease renewals) and
// its mailbox workers until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { e.keeper.run(ctx) })
	wg.Go(func() { e.dispatcher.run(ctx) })
	e.limiter.Run(ctx)
	wg.Wait()
}

// Open implements transport.Handler: one connection actor per connection.
func (e *Engine) Open(c transport.Conn) transport.Session {
	p := c.Principal()
	a := &connActor{
		e:    e,
		conn: c,
		user: &pb.Principal{UserId: p.UserID, TenantId: p.TenantID, Roles: p.Roles},
		ref:  &pb.ConnRef{ConnId: c.ID(), Address: e.system.Address()},
	}
	pid := e.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }, actor.WithDispatcher(e.dispatcher)))
	return &session{root: e.system.Root, pid: pid, conn: c, queued: &a.queued}
}

// InvalidateRoom tells an active room that its conversation changed
// (participants, deletion); an inactive room reads it fresh on activation.
func (e *Engine) InvalidateRoom(tenant, conv string) {
	e.rooms.send(roomKey{tenant, conv}, &pb.Invalidate{Reason: "conversation changed"})
}

// Rebalance hands over every local room this node no longer owns, and has
// the calls drop participants of nodes that left; call it when the members
// change.
func (e *Engine) Rebalance() {
	e.rooms.handover()
	e.calls.membersChanged()
}

// ActiveRooms returns the number of active rooms on this node.
func (e *Engine) ActiveRooms() int { return e.rooms.len() }

// Drain stops every room and call of this node (each room snapshots and
// releases its lease), waiting at most until ctx ends. Clients may go on
// sending meanwhile: a room activated from then on answers unavailable
// instead of loading, so nothing gets a seq that the stopping producer
// could no longer publish, and the senders send again once reconnected.
func (e *Engine) Drain(ctx context.Context) {
	e.draining.Store(true)
	e.calls.stopAll(ctx)
	e.rooms.stopAll(ctx)
}

// Shutdown stops every room (each flushes what it holds) and the actor
// system, waiting at most until ctx ends.
func (e *Engine) Shutdown(ctx context.Context) {
	e.Drain(ctx)
	e.historyWG.Wait()
	if e.remote != nil {
		e.remote.Shutdown(true)
	}
	e.system.Shutdown()
}

// session forwards a connection's events to its actor.
type session struct {
	root   *actor.RootContext
	pid    *actor.PID
	conn   transport.Conn
	queued *atomic.Int32 // events sent to the actor and not handled yet
}

// maxQueuedEvents bounds the events of one connection waiting for its
// actor: a client that sends faster than its actor handles (a flood in one
// write can hold thousands) gets rate_limited for the excess instead of
// growing the mailbox.
const maxQueuedEvents = 256

// inbound is a client event on its way to the connection actor.
type inbound struct {
	name string
	data []byte
	ack  uint64
}

func (s *session) Event(name string, data []byte, ack uint64) {
	if s.queued.Add(1) > maxQueuedEvents {
		s.queued.Add(-1)
		s.conn.Reply(ack, transport.NewFrame(wire.EvError, wire.Marshal(wire.Error{Code: wire.CodeRateLimited, Message: errEventsQueued.Error()})))
		return
	}
	s.root.Send(s.pid, &inbound{name: name, data: data, ack: ack})
}

// Closed poisons the actor: events queued before it are still handled.
func (s *session) Closed() { s.root.Poison(s.pid) }

type roomKey struct{ tenant, conv string }

const roomShards = 32

// roomTable places room actors on this node. A room is sent to under its
// shard's lock, and removed under the same lock before it is poisoned, so
// no message can reach a room that is passivating.
type roomTable struct {
	e      *Engine
	seed   maphash.Seed
	shards [roomShards]struct {
		mu sync.Mutex
		m  map[roomKey]*actor.PID
	}
}

func newRoomTable(e *Engine) *roomTable {
	t := &roomTable{e: e, seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[roomKey]*actor.PID)
	}
	return t
}

func (t *roomTable) shard(k roomKey) int { return shardOf(t.seed, k.tenant, k.conv, roomShards) }

// shardOf picks one of n shards for the identity tenant/id.
func shardOf(seed maphash.Seed, tenant, id string, n int) int {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(tenant)
	h.WriteByte(0)
	h.WriteString(id)
	return int(h.Sum64() % uint64(n))
}

// send delivers msg to the room on the node that owns it, activating it
// there if needed.
func (t *roomTable) send(k roomKey, msg any) {
	if addr, self := t.e.place().Owner(k.key()); !self {
		if env := wrap(k, msg); env != nil {
			t.e.system.Root.Send(actor.NewPID(addr, routerName), env)
		}
		return
	}
	t.local(k, msg, nil)
}

// local delivers msg to the room on this node (sender: who gets answers).
// An Invalidate does not activate a room: an inactive one reads fresh.
func (t *roomTable) local(k roomKey, msg any, sender *actor.PID) {
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	var pid *actor.PID
	if _, ok := msg.(*pb.Invalidate); ok {
		if pid = s.m[k]; pid == nil {
			return
		}
	} else {
		pid = t.pidLocked(s.m, k)
	}
	if sender != nil {
		t.e.system.Root.RequestWithCustomSender(pid, msg, sender)
		return
	}
	t.e.system.Root.Send(pid, msg)
}

// pidLocked returns the room's actor, activating it; the shard is locked.
func (t *roomTable) pidLocked(m map[roomKey]*actor.PID, k roomKey) *actor.PID {
	pid, ok := m[k]
	if !ok {
		r := newRoom(t.e, k)
		pid = t.e.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r }, actor.WithDispatcher(t.e.dispatcher)))
		m[k] = pid
		t.e.deps.Metrics.RoomActivated()
	}
	return pid
}

// handover asks every local room this node no longer owns to move.
func (t *roomTable) handover() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, pid := range s.m {
			if _, self := t.e.place().Owner(k.key()); !self {
				t.e.system.Root.Send(pid, &handoverNow{})
			}
		}
		s.mu.Unlock()
	}
}

// request sends msg to the room (activating it) and returns the future of
// its answer.
func (t *roomTable) request(k roomKey, msg any, timeout time.Duration) *actor.Future {
	if addr, self := t.e.place().Owner(k.key()); !self {
		return t.e.system.Root.RequestFuture(actor.NewPID(addr, routerName), wrap(k, msg), timeout)
	}
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	pid := t.pidLocked(s.m, k)
	return t.e.system.Root.RequestFuture(pid, msg, timeout)
}

// convsOf lists up to limit active conversations of tenant.
func (t *roomTable) convsOf(tenant string, limit int) []string {
	var out []string
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k := range s.m {
			if k.tenant == tenant && len(out) < limit {
				out = append(out, k.conv)
			}
		}
		s.mu.Unlock()
	}
	return out
}

// sendIfActive sends msg to the room only if it is active.
func (t *roomTable) sendIfActive(k roomKey, msg any) {
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if pid, ok := s.m[k]; ok {
		t.e.system.Root.Send(pid, msg)
	}
}

// remove takes the room out of the table; the room then poisons itself.
func (t *roomTable) remove(k roomKey, pid *actor.PID) bool {
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[k]; ok && cur.Equal(pid) {
		delete(s.m, k)
		t.e.deps.Metrics.RoomPassivated()
		return true
	}
	return false
}

func (t *roomTable) len() int {
	n := 0
	for i := range t.shards {
		t.shards[i].mu.Lock()
		n += len(t.shards[i].m)
		t.shards[i].mu.Unlock()
	}
	return n
}

// stopAll poisons every room and waits for them to stop.
func (t *roomTable) stopAll(ctx context.Context) {
	var futures []*actor.Future
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, pid := range s.m {
			futures = append(futures, t.e.system.Root.PoisonFuture(pid))
			delete(s.m, k)
		}
		s.mu.Unlock()
	}
	for _, f := range futures {
		if ctx.Err() != nil {
			return
		}
		_ = f.Wait()
	}
}
