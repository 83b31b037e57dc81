package actors

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/transport"
)

// enqueue checks a message against the room and sends it on for its seq
// at once, unless a batch of the room waits for its seqs: then it joins the
// next batch, which goes when that answer is in. A room has at most one
// assignment in flight, so its messages keep their order, and a busy room
// gathers its messages into batches by itself.
func (r *room) enqueue(ctx actor.Context, m *pb.SendMessage) {
	// The sender is resolved only to refuse: accept resolves it once for
	// the messages that go on.
	fail := func(werr *wire.Error) {
		r.e.deps.Metrics.MessageRejected(string(werr.Code))
		r.reply(r.resolve(m.Conn), m.Ack, wire.EvMessageFailed, wire.MessageFailed{MessageID: m.MessageId, ConversationID: r.key.conv, Code: werr.Code, Message: werr.Message})
	}
	if werr := r.load(); werr != nil {
		fail(werr)
		r.maybePassivate(ctx)
		return
	}
	if r.conv.Role(m.User.UserId) == "" {
		fail(wire.Errorf(wire.CodeNotMember, "not a member of this conversation"))
		return
	}
	if werr := r.restricted(m.User.UserId, true); werr != nil {
		fail(werr)
		return
	}
	if len(r.byID)+len(r.batch)+r.assigning.len() >= maxRoomInflight {
		fail(wire.Errorf(wire.CodeUnavailable, "room is busy; try again"))
		return
	}
	r.batch = append(r.batch, m)
	if r.assigning == nil {
		r.flush(ctx)
	}
}

// assignment is one batch of the room waiting for its seqs. Done fills
// res and err, closes ready, and sends the assignment to the room.
type assignment struct {
	batch   []*pb.SendMessage
	bodies  [][]byte
	now     time.Time
	refresh bool // the batch sets the recent list's TTL again
	ready   chan struct{}
	res     []persistence.Assignment
	err     error
}

func (a *assignment) len() int {
	if a == nil {
		return 0
	}
	return len(a.batch)
}

// recentRefreshEvery is how often the room's batches set the Redis recent
// list's TTL (ROOM_STATE_TTL) again: a 24th of it, so the list outlives
// the room's last message by at least 23/24 of the TTL, for one EXPIRE
// per room that often instead of one per batch.
func (r *room) recentRefreshEvery() time.Duration { return r.e.deps.Rooms.StateTTL / 24 }

// flush asks for the batch's seqs, unless a batch already waits for its
// own: that one's answer flushes again.
func (r *room) flush(ctx actor.Context) {
	if len(r.batch) == 0 || r.assigning != nil {
		return
	}
	batch := r.batch
	r.batch = nil
	if !r.trusted(ctx) {
		r.batch = batch
		r.fence(ctx, "lease expired")
		return
	}
	now := time.Now().UTC()
	a := &assignment{batch: batch, bodies: make([][]byte, len(batch)), now: now, ready: make(chan struct{})}
	a.refresh = now.Sub(r.recentTTLAt) >= r.recentRefreshEvery()
	ids := make([]string, len(batch))
	for i, m := range batch {
		ids[i] = m.MessageId
		a.bodies[i] = wire.Marshal(r.newMessage(m, 0, now))
	}
	self, root := r.self, r.e.system.Root
	req := &persistence.AssignRequest{
		AssignBatch: persistence.AssignBatch{Tenant: r.key.tenant, Conv: r.key.conv, Lease: r.lease, MessageIDs: ids, Bodies: a.bodies, RefreshRecent: a.refresh},
		Done: func(res []persistence.Assignment, err error) {
			a.res, a.err = res, err
			close(a.ready)
			root.Send(self, a)
		},
	}
	if err := r.e.deps.Assigner.Submit(req); err != nil {
		r.assignFailed(batch, err)
		return
	}
	r.assigning = a
}

// assigned takes a batch's seqs and sends its messages on.
func (r *room) assigned(ctx actor.Context, a *assignment) {
	if r.assigning != a {
		return // the room was fenced meanwhile: its senders were told
	}
	<-a.ready
	r.assigning = nil
	switch {
	case errors.Is(a.err, persistence.ErrFenced):
		r.batch = append(a.batch, r.batch...)
		r.fence(ctx, "lease taken by another activation")
		return
	case a.err != nil:
		r.assignFailed(a.batch, a.err)
	default:
		if a.refresh {
			r.recentTTLAt = a.now
		}
		for i, m := range a.batch {
			r.accept(ctx, m, a.res[i], a.now, a.bodies[i])
		}
	}
	r.flush(ctx)
	if r.handingOver {
		r.handover(ctx)
	}
}

// finishSends sends on, as the room stops, the batch in flight and the
// one gathered behind it, waiting for their seqs: what the room took in
// goes to Kafka.
func (r *room) finishSends(ctx actor.Context) {
	for len(r.batch) > 0 || r.assigning != nil {
		if r.assigning == nil {
			if r.flush(ctx); r.assigning == nil {
				return
			}
		}
		r.finishAssignment(ctx, r.assigning)
	}
}

// finishAssignment waits for a's answer and takes it.
func (r *room) finishAssignment(ctx actor.Context, a *assignment) {
	t := time.NewTimer(r.e.deps.StoreTimeout + time.Second)
	defer t.Stop()
	select {
	case <-a.ready:
		r.assigned(ctx, a)
	case <-t.C:
		r.assigning = nil
		r.assignFailed(a.batch, errors.New("no answer from the sequencer"))
	}
}

// assignFailed tells the senders of batch that it got no seqs.
func (r *room) assignFailed(batch []*pb.SendMessage, err error) {
	r.e.deps.Logger.Warn("seq assignment failed", "tenant", r.key.tenant, "conversation", r.key.conv, "err", err)
	for _, m := range batch {
		r.reply(r.resolve(m.Conn), m.Ack, wire.EvMessageFailed, wire.MessageFailed{MessageID: m.MessageId, ConversationID: r.key.conv, Code: wire.CodeUnavailable, Message: "sequencing unavailable; send again"})
	}
}

// newMessage is the message:new data (and Kafka record) of m with seq.
func (r *room) newMessage(m *pb.SendMessage, seq int64, now time.Time) wire.MessageNew {
	return wire.MessageNew{
		MessageID: m.MessageId, ConversationID: r.key.conv, TenantID: r.key.tenant, SenderID: m.User.UserId,
		Content: m.Content, Seq: seq, CreatedAt: now.Format(persistence.TimeFormat),
	}
}

// accept sends a sequenced message to Kafka; body is its message:new data
// without seq (as in the recent list).
func (r *room) accept(ctx actor.Context, m *pb.SendMessage, a persistence.Assignment, now time.Time, body []byte) {
	t := r.resolve(m.Conn)
	switch {
	case a.Dup && a.Conversation != r.key.conv:
		r.reply(t, m.Ack, wire.EvMessageFailed, wire.MessageFailed{MessageID: m.MessageId, ConversationID: r.key.conv, Code: wire.CodeInvalidMessage, Message: "message_id was already used in another conversation"})
		return
	case a.Dup && a.Status == persistence.StatusPersisted:
		r.reply(t, m.Ack, wire.EvMessageAccepted, wire.MessageAccepted{MessageID: m.MessageId, ConversationID: r.key.conv, Seq: a.Seq})
		r.reply(t, 0, wire.EvMessagePersisted, wire.MessagePersisted{MessageID: m.MessageId, ConversationID: r.key.conv, Seq: a.Seq, PersistedAt: a.PersistedAt})
		return
	case a.Dup:
		if o, ok := r.byID[m.MessageId]; ok {
			o.extra = append(o.extra, waiter{t: t, ack: m.Ack})
			r.track(o, t)
			return
		}
	}
	o := &outMsg{
		body: body,
		seq:  a.Seq, id: m.MessageId, sender: t, ack: m.Ack, first: now, replay: a.Dup,
		conv: r.key.conv, senderID: m.User.UserId,
		frame: transport.NewFrame(wire.EvMessageNew, wire.WithSeq(body, a.Seq)),
	}
	self, root, id := r.self, r.e.system.Root, m.MessageId
	o.rec = &persistence.Record{
		Topic:   r.e.deps.MessageTopic,
		Key:     r.messageKey(),
		Value:   o.frame.Data, // the record shares the frame's bytes
		Headers: r.epochHeaders(),
		Done:    func(err error) { root.Send(self, &produced{id: id, err: err}) },
	}
	if err := r.e.deps.Tracker.Track(r.key.tenant, o.id, o.rec, r.notifier(t, o.id)); err != nil {
		r.failOut(o, wire.Errorf(wire.CodeUnavailable, "too many messages awaiting confirmation; try again"))
		return
	}
	r.byID[o.id] = o
	if o.replay {
		// A resend of a message whose outcome is unknown: tell the sender
		// its seq now; the persister's dedup makes the resend harmless.
		r.reply(t, m.Ack, wire.EvMessageAccepted, wire.MessageAccepted{MessageID: o.id, ConversationID: r.key.conv, Seq: o.seq})
	} else {
		r.inflight = append(r.inflight, o)
	}
	r.send(ctx, o)
}

// messageKey is the Kafka key of the room's messages, built once: every
// record of the room carries it, and pending ones keep it until persisted.
func (r *room) messageKey() string {
	if r.recordKey == "" {
		r.recordKey = persistence.MessageKey(r.key.tenant, r.key.conv)
	}
	return r.recordKey
}

// track adds t as another waiter for o's persistence outcome.
func (r *room) track(o *outMsg, t target) {
	if err := r.e.deps.Tracker.Track(r.key.tenant, o.id, o.rec, r.notifier(t, o.id)); err != nil {
		r.e.deps.Logger.Warn("tracking duplicate failed", "err", err)
	}
}

// notifier tells t the persistence outcome of message id. It runs on the
// tracker's goroutine and touches no room state.
func (r *room) notifier(t target, id string) func(persistence.Outcome) {
	conv := r.key.conv
	return func(o persistence.Outcome) {
		if o.Status == persistence.StatusPersisted {
			r.reply(t, 0, wire.EvMessagePersisted, wire.MessagePersisted{MessageID: id, ConversationID: conv, Seq: o.Seq, PersistedAt: o.PersistedAt.Format(persistence.TimeFormat)})
			return
		}
		r.reply(t, 0, wire.EvMessageFailed, wire.MessageFailed{MessageID: id, ConversationID: conv, Code: wire.Code(o.Code), Message: o.Message})
	}
}

func (r *room) send(ctx actor.Context, o *outMsg) {
	if !r.trusted(ctx) {
		return
	}
	if err := r.e.deps.Producer.Send(o.rec); err != nil {
		r.onProduced(ctx, &produced{id: o.id, err: err})
	}
}

// onProduced handles Kafka's answer for one message.
func (r *room) onProduced(ctx actor.Context, m *produced) {
	o, ok := r.byID[m.id]
	if !ok {
		return
	}
	if m.err != nil {
		if time.Since(o.first) < produceRetryFor && !errors.Is(m.err, persistence.ErrProducerClosed) {
			self, root, id := r.self, r.e.system.Root, o.id
			time.AfterFunc(produceRetryWait, func() { root.Send(self, &reproduce{id: id}) })
			return
		}
		r.e.deps.Logger.Warn("message not accepted by Kafka", "tenant", r.key.tenant, "conversation", r.key.conv, "message_id", o.id, "err", m.err)
		r.failOut(o, wire.Errorf(wire.CodeUnavailable, "message could not be published; send it again"))
		delete(r.byID, o.id)
		if r.trusted(ctx) {
			r.release()
		}
		return
	}
	if !r.trusted(ctx) {
		return
	}
	o.acked = true
	if o.replay {
		delete(r.byID, o.id)
		r.e.deps.Tracker.Accepted(r.key.tenant, o.id)
	} else if !r.releaseQueued {
		// Kafka answers a produce request's records one by one; those
		// already in the mailbox are taken before the release.
		r.releaseQueued = true
		ctx.Send(r.self, &releaseNow{})
	}
	if r.handingOver {
		r.handover(ctx)
	}
}

func (r *room) resend(ctx actor.Context, id string) {
	if o, ok := r.byID[id]; ok && !o.acked && !o.failed {
		r.send(ctx, o)
	}
}

// failOut tells o's senders it failed and forgets its id, so a resend is new.
func (r *room) failOut(o *outMsg, werr *wire.Error) {
	o.failed = true
	r.e.deps.Tracker.Forget(r.key.tenant, o.id)
	sctx, cancel := r.storeCtx()
	if err := r.e.deps.Sequencer.Release(sctx, r.key.tenant, r.key.conv, o.id, o.seq, o.body); err != nil {
		r.e.deps.Logger.Warn("message id not released", "err", err)
	}
	cancel()
	mf := wire.MessageFailed{MessageID: o.id, ConversationID: r.key.conv, Code: werr.Code, Message: werr.Message}
	r.reply(o.sender, o.ack, wire.EvMessageFailed, mf)
	for _, w := range o.extra {
		r.reply(w.t, w.ack, wire.EvMessageFailed, mf)
	}
}

// release fans out, in seq order, every message at the head of the queue
// that Kafka has; a failed one is skipped. The messages released together
// reach each member in one queueing, and then their senders' acceptances.
func (r *room) release() {
	if !r.lease.Valid(time.Now()) {
		return // fenced by the next trusted() call; nothing goes out
	}
	frames := r.releasing[:0]
	var senders []*outMsg
	for len(r.inflight) > 0 {
		o := r.inflight[0]
		if !o.acked && !o.failed {
			break
		}
		r.inflight[0] = nil
		r.inflight = r.inflight[1:]
		if o.failed {
			continue
		}
		delete(r.byID, o.id)
		if o.seq > r.lastSeq {
			r.lastSeq = o.seq
		}
		r.counters.Messages++
		r.counted()
		r.remember(o.seq, o.frame)
		frames = append(frames, o.frame)
		senders = append(senders, o)
	}
	if len(r.inflight) == 0 {
		r.inflight = nil
	}
	if len(frames) == 0 {
		return
	}
	r.fanout(frames...)
	clear(frames)
	r.releasing = frames[:0]
	for _, o := range senders {
		acc := wire.MessageAccepted{MessageID: o.id, ConversationID: r.key.conv, Seq: o.seq}
		r.reply(o.sender, o.ack, wire.EvMessageAccepted, acc)
		for _, w := range o.extra {
			r.reply(w.t, w.ack, wire.EvMessageAccepted, acc)
		}
		r.e.deps.Tracker.Accepted(r.key.tenant, o.id)
	}
}

// fanout delivers encoded frames, in order, to every online member:
// directly to this node's connections, and once per frame and other node,
// whatever its number of members.
func (r *room) fanout(fs ...*transport.Frame) {
	var remote map[string][]string
	for id, m := range r.online {
		if m.conn.local != nil {
			m.conn.local.SendAll(fs)
			continue
		}
		if remote == nil {
			remote = map[string][]string{}
		}
		remote[m.conn.addr()] = append(remote[m.conn.addr()], id)
	}
	for addr, ids := range remote {
		pid := actor.NewPID(addr, deliveryName)
		for _, f := range fs {
			r.e.system.Root.Send(pid, &pb.NodeDeliver{
				Tenant: r.key.tenant, Conversation: r.key.conv, ConnIds: ids, Name: f.Name, Data: f.Data,
			})
		}
	}
}

// deliver sends a frame to one connection.
func (r *room) deliver(t target, f *transport.Frame) {
	if t.local != nil {
		t.local.Send(f)
		return
	}
	r.e.system.Root.Send(actor.NewPID(t.addr(), deliveryName), &pb.NodeDeliver{
		Tenant: r.key.tenant, Conversation: r.key.conv, ConnIds: []string{t.ref.ConnId}, Name: f.Name, Data: f.Data,
	})
}
