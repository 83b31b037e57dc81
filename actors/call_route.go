package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/transport"
)

// Calls are virtual actors placed like rooms: the node that owns the key
// "call:tenant/call_id" runs the call, and every call message goes there
// (a CallEnvelope to its router when it is another node). Events for a
// connection on another node go back in a CallEnvelope to that node's
// router, which hands them to its connections in order and reports the
// unknown ones to the call. A call has no snapshot: when its node dies,
// or the members change so that another node owns its key, it is lost.

// callRequest is a call message sent by a connection: it says whom to answer.
type callRequest interface {
	GetConn() *pb.ConnRef
	GetAck() uint64
}

func (k callKey) key() string { return "call:" + k.tenant + "/" + k.call }

// route sends msg to call k on the node that owns it.
func (t *callTable) route(k callKey, msg any) {
	if addr, self := t.e.place().Owner(k.key()); !self {
		if env := wrapCall(k, msg); env != nil {
			t.e.system.Root.Send(actor.NewPID(addr, routerName), env)
		}
		return
	}
	t.deliver(k, msg)
}

// deliver hands msg to call k on this node: CallStart activates the call,
// anything else needs an active one. A refused request is answered with
// call:error.
func (t *callTable) deliver(k callKey, msg any) {
	if _, ok := msg.(*pb.CallStart); ok {
		if !t.activate(k, msg) {
			t.refuse(k, msg, wire.CodeUnavailable, "too many calls on this node; try again later")
		}
		return
	}
	if !t.sendIfActive(k, msg) {
		t.refuse(k, msg, wire.CodeNotFound, "no such call")
	}
}

// refuse answers a request the call could not take; a refused start or
// join no longer counts as one of the connection's calls.
func (t *callTable) refuse(k callKey, msg any, code wire.Code, text string) {
	r, ok := msg.(callRequest)
	if !ok {
		return // ConnGone: nobody to answer
	}
	switch msg.(type) {
	case *pb.CallStart, *pb.CallJoin:
		t.untrackRef(k, r.GetConn())
	}
	f := transport.NewFrame(wire.EvCallError, wire.Marshal(wire.CallError{CallID: k.call, Code: code, Message: text}))
	t.sendFrame(k, target{ref: r.GetConn()}, r.GetAck(), f)
}

// sendFrame sends f to one connection of call k, answering ack: directly
// when it is a connection of this node, else through its node's router.
// The call drops a connection of this node that is gone.
func (t *callTable) sendFrame(k callKey, to target, ack uint64, f *transport.Frame) {
	if to.local == nil && to.ref.Address == t.e.system.Address() {
		c, ok := t.e.deps.Conns.Get(to.ref.ConnId)
		if !ok {
			t.route(k, &pb.ConnGone{ConnId: to.ref.ConnId})
			return
		}
		to.local = c
	}
	if to.local != nil {
		to.local.Reply(ack, f)
		return
	}
	t.sendRemote(k, to.addr(), []string{to.ref.ConnId}, ack, f)
}

// sendRemote sends f to the listed connections of the node at addr. A
// connection that is gone there is reported to the call as ConnGone.
func (t *callTable) sendRemote(k callKey, addr string, connIDs []string, ack uint64, f *transport.Frame) {
	t.e.system.Root.Send(actor.NewPID(addr, routerName), &pb.CallEnvelope{
		Tenant: k.tenant, CallId: k.call,
		Payload: &pb.CallEnvelope_Deliver{Deliver: &pb.NodeDeliver{Tenant: k.tenant, ConnIds: connIDs, Name: f.Name, Data: f.Data, Ack: ack}},
	})
}

// untrackRef forgets that a connection is in call k, on its node.
func (t *callTable) untrackRef(k callKey, ref *pb.ConnRef) {
	if ref == nil {
		return
	}
	if ref.Address == t.e.system.Address() {
		t.untrack(ref.ConnId, k)
		return
	}
	t.e.system.Root.Send(actor.NewPID(ref.Address, routerName), &pb.CallEnvelope{
		Tenant: k.tenant, CallId: k.call, Payload: &pb.CallEnvelope_Untrack{Untrack: &pb.CallUntrack{ConnId: ref.ConnId}},
	})
}

// routeCall handles a CallEnvelope that reached this node's router: events
// for this node's connections, bookkeeping of them, or a request for a
// call this node owns. Views may disagree for a moment: a request for a
// call another node owns is passed on, at most twice.
func (e *Engine) routeCall(ctx actor.Context, env *pb.CallEnvelope) {
	k := callKey{env.Tenant, env.CallId}
	switch p := env.Payload.(type) {
	case *pb.CallEnvelope_Deliver:
		e.calls.deliverFrames(k, p.Deliver)
		return
	case *pb.CallEnvelope_Untrack:
		e.calls.untrack(p.Untrack.ConnId, k)
		return
	}
	msg := unwrapCall(env)
	if env.Tenant == "" || env.CallId == "" || !complete(msg) {
		return
	}
	if addr, self := e.place().Owner(k.key()); !self && env.Hops < 2 {
		env.Hops++
		ctx.Send(actor.NewPID(addr, routerName), env)
		return
	}
	e.calls.deliver(k, msg)
}

// deliverFrames hands a call's event to this node's connections, in the
// order the call sent them; the call drops the connections that are gone.
func (t *callTable) deliverFrames(k callKey, m *pb.NodeDeliver) {
	f := transport.NewFrame(m.Name, m.Data)
	for _, id := range m.ConnIds {
		c, ok := t.e.deps.Conns.Get(id)
		if !ok {
			t.route(k, &pb.ConnGone{ConnId: id})
			continue
		}
		c.Reply(m.Ack, f)
	}
}

// complete reports whether a call message from another node has what the
// call reads without checking.
func complete(msg any) bool {
	switch m := msg.(type) {
	case *pb.ConnGone:
		return m.GetConnId() != ""
	case callRequest:
		type user interface{ GetUser() *pb.Principal }
		u, ok := msg.(user)
		return m.GetConn() != nil && ok && u.GetUser() != nil
	}
	return false
}

// wrapCall puts a call message in an envelope for the owner's node.
func wrapCall(k callKey, msg any) *pb.CallEnvelope {
	env := &pb.CallEnvelope{Tenant: k.tenant, CallId: k.call}
	switch m := msg.(type) {
	case *pb.CallStart:
		env.Payload = &pb.CallEnvelope_Start{Start: m}
	case *pb.CallJoin:
		env.Payload = &pb.CallEnvelope_Join{Join: m}
	case *pb.CallLeave:
		env.Payload = &pb.CallEnvelope_Leave{Leave: m}
	case *pb.CallEnd:
		env.Payload = &pb.CallEnvelope_End{End: m}
	case *pb.CallSignal:
		env.Payload = &pb.CallEnvelope_Signal{Signal: m}
	case *pb.RecordingRequest:
		env.Payload = &pb.CallEnvelope_RecordingRequest{RecordingRequest: m}
	case *pb.RecordingConsent:
		env.Payload = &pb.CallEnvelope_RecordingConsent{RecordingConsent: m}
	case *pb.RecordingStop:
		env.Payload = &pb.CallEnvelope_RecordingStop{RecordingStop: m}
	case *pb.RecordingQuality:
		env.Payload = &pb.CallEnvelope_RecordingQuality{RecordingQuality: m}
	case *pb.ConnGone:
		env.Payload = &pb.CallEnvelope_Gone{Gone: m}
	default:
		return nil
	}
	return env
}

// unwrapCall returns the call message of a request envelope.
func unwrapCall(env *pb.CallEnvelope) any {
	switch p := env.Payload.(type) {
	case *pb.CallEnvelope_Start:
		return p.Start
	case *pb.CallEnvelope_Join:
		return p.Join
	case *pb.CallEnvelope_Leave:
		return p.Leave
	case *pb.CallEnvelope_End:
		return p.End
	case *pb.CallEnvelope_Signal:
		return p.Signal
	case *pb.CallEnvelope_RecordingRequest:
		return p.RecordingRequest
	case *pb.CallEnvelope_RecordingConsent:
		return p.RecordingConsent
	case *pb.CallEnvelope_RecordingStop:
		return p.RecordingStop
	case *pb.CallEnvelope_RecordingQuality:
		return p.RecordingQuality
	case *pb.CallEnvelope_Gone:
		return p.Gone
	}
	return nil
}
