package actors

import (
	"errors"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"

	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
)

// Lease timing: the node's lease keeper renews every leaseRenewEvery; a
// room waits at most leaseWait for another node's lease to go.
const (
	leaseRenewEvery = time.Second
	leaseWait       = 4 * time.Second
)

type handoverNow struct{}

// acquire takes the room's lease. A lease held by a node that is no longer
// a member is taken over at once with a new epoch; one held by a live node
// (which is handing the room over) is waited for.
func (r *room) acquire() *wire.Error {
	deadline := time.Now().Add(leaseWait)
	force := false
	for {
		ctx, cancel := r.storeCtx()
		l, holder, err := r.e.deps.Leases.Acquire(ctx, r.key.tenant, r.key.conv, r.e.place().NodeID(), force)
		cancel()
		switch {
		case err == nil:
			r.lease = l
			r.e.keeper.add(r.key, l, r.self)
			return nil
		case errors.Is(err, persistence.ErrLeaseHeld) && !r.e.place().AliveNode(holder):
			force = true
			continue
		case errors.Is(err, persistence.ErrLeaseHeld) && time.Now().Before(deadline):
			time.Sleep(50 * time.Millisecond)
			continue
		}
		r.e.deps.Logger.Warn("room lease not acquired", "tenant", r.key.tenant, "conversation", r.key.conv, "err", err)
		return wire.Errorf(wire.CodeUnavailable, "room is moving between nodes; try again")
	}
}

// trusted reports whether this activation may still act; it stops the
// activation when not. Every seq assignment, Kafka send, fan-out and
// snapshot goes through it.
func (r *room) trusted(ctx actor.Context) bool {
	if r.lease.Valid(time.Now()) {
		return true
	}
	r.fence(ctx, "lease expired")
	return false
}

// fence stops an activation that lost its lease: it sends nothing more,
// tells the senders of what it holds to send again, and hands every later
// request to the room's current owner.
func (r *room) fence(ctx actor.Context, why string) {
	if r.passivating {
		return
	}
	r.e.deps.Logger.Warn("room activation fenced", "tenant", r.key.tenant, "conversation", r.key.conv, "why", why)
	werr := wire.Errorf(wire.CodeUnavailable, "the room moved to another node; send again")
	var waiting []*pb.SendMessage
	if r.assigning != nil {
		waiting = r.assigning.batch
		r.assigning = nil
	}
	for _, m := range append(waiting, r.batch...) {
		r.reply(r.resolve(m.Conn), m.Ack, wire.EvMessageFailed, wire.MessageFailed{MessageID: m.MessageId, ConversationID: r.key.conv, Code: werr.Code, Message: werr.Message})
	}
	r.batch = nil
	for _, o := range r.byID {
		if !o.acked {
			r.e.deps.Tracker.Forget(r.key.tenant, o.id)
			mf := wire.MessageFailed{MessageID: o.id, ConversationID: r.key.conv, Code: werr.Code, Message: werr.Message}
			r.reply(o.sender, o.ack, wire.EvMessageFailed, mf)
		}
	}
	r.byID, r.inflight = map[string]*outMsg{}, nil
	r.e.keeper.remove(r.key, r.lease)
	r.lease = nil
	r.stop(ctx)
}

// stop takes the room out of the table and stops it; requests already in
// its mailbox are forwarded to the owner.
func (r *room) stop(ctx actor.Context) {
	r.passivating = true
	r.e.rooms.remove(r.key, r.self)
	ctx.Poison(r.self)
}

// handover moves the room to its new owner once what is in flight is done:
// snapshot, lease released, stopped.
func (r *room) handover(ctx actor.Context) {
	if r.passivating {
		return
	}
	if _, self := r.e.place().Owner(r.key.key()); self {
		r.handingOver = false
		return
	}
	r.handingOver = true
	if len(r.byID) > 0 || len(r.batch) > 0 || r.assigning != nil {
		return // finished by assigned and onProduced once the last ack is in
	}
	r.writeSnapshot(ctx)
	r.stop(ctx)
}

// releaseLease gives the lease up as the room stops.
func (r *room) releaseLease() {
	if r.lease == nil {
		return
	}
	r.e.keeper.remove(r.key, r.lease)
	ctx, cancel := r.storeCtx()
	defer cancel()
	if err := r.e.deps.Leases.Release(ctx, r.key.tenant, r.key.conv, r.lease); err != nil {
		r.e.deps.Logger.Warn("room lease not released", "err", err)
	}
	r.lease = nil
}

// epochHeaders mark a record with the activation that sent it. The
// records of one lease share them: nothing writes to a record's headers.
func (r *room) epochHeaders() []sarama.RecordHeader {
	if r.headersLease != r.lease || r.headers == nil {
		r.headersLease = r.lease
		r.headers = []sarama.RecordHeader{
			{Key: []byte("epoch"), Value: []byte(strconv.FormatInt(r.lease.Epoch, 10))},
			{Key: []byte("node"), Value: []byte(r.e.place().NodeID())},
		}
	}
	return r.headers
}
