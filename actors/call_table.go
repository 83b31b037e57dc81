package actors

import (
	"context"
	"hash/maphash"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/caasd/caasd/actors/actorspb"
)

// Bounds of the calls on one node.
const (
	// maxCalls bounds the active call actors of a node.
	maxCalls = 100000
	// maxCallsPerConn bounds the calls one connection may be in.
	maxCallsPerConn = 8
	callShards      = 16
)

// callKey is a call actor's identity: tenant/call.
type callKey struct{ tenant, call string }

// callTable holds the call actors of this node (route, in call_route.go,
// finds the node that owns a call) like roomTable holds rooms: a call is
// sent to under its shard's lock and removed under the same lock before it
// is poisoned. It also remembers which calls each local connection asked
// to be in, wherever they run, so that a closing connection leaves them.
type callTable struct {
	e      *Engine
	seed   maphash.Seed
	shards [callShards]struct {
		mu sync.Mutex
		m  map[callKey]*actor.PID
	}
	n int // active calls; guarded by nmu
	// byConn maps a local connection id to the calls it is in.
	byConn map[string]map[callKey]struct{}
	nmu    sync.Mutex
}

func newCallTable(e *Engine) *callTable {
	t := &callTable{e: e, seed: maphash.MakeSeed(), byConn: make(map[string]map[callKey]struct{})}
	for i := range t.shards {
		t.shards[i].m = make(map[callKey]*actor.PID)
	}
	return t
}

func (t *callTable) shard(k callKey) int { return shardOf(t.seed, k.tenant, k.call, callShards) }

// activate delivers msg to the call, activating it if needed; false when
// the node holds maxCalls calls already.
func (t *callTable) activate(k callKey, msg any) bool {
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	pid, ok := s.m[k]
	if !ok {
		t.nmu.Lock()
		full := t.n >= maxCalls
		if !full {
			t.n++
		}
		t.nmu.Unlock()
		if full {
			return false
		}
		c := newCall(t.e, k)
		pid = t.e.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return c }))
		s.m[k] = pid
	}
	t.e.system.Root.Send(pid, msg)
	return true
}

// sendIfActive delivers msg to an active call; false if there is none.
func (t *callTable) sendIfActive(k callKey, msg any) bool {
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	pid, ok := s.m[k]
	if ok {
		t.e.system.Root.Send(pid, msg)
	}
	return ok
}

// remove takes the call out of the table; the call then poisons itself.
func (t *callTable) remove(k callKey, pid *actor.PID) bool {
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[k]; ok && cur.Equal(pid) {
		delete(s.m, k)
		t.nmu.Lock()
		t.n--
		t.nmu.Unlock()
		return true
	}
	return false
}

func (t *callTable) len() int {
	t.nmu.Lock()
	defer t.nmu.Unlock()
	return t.n
}

// track records that connection connID is in call k; false when the
// connection is in maxCallsPerConn calls already.
func (t *callTable) track(connID string, k callKey) bool {
	t.nmu.Lock()
	defer t.nmu.Unlock()
	calls := t.byConn[connID]
	if _, ok := calls[k]; ok {
		return true
	}
	if len(calls) >= maxCallsPerConn {
		return false
	}
	if calls == nil {
		calls = make(map[callKey]struct{})
		t.byConn[connID] = calls
	}
	calls[k] = struct{}{}
	return true
}

// untrack forgets that connection connID is in call k.
func (t *callTable) untrack(connID string, k callKey) {
	t.nmu.Lock()
	defer t.nmu.Unlock()
	if calls, ok := t.byConn[connID]; ok {
		delete(calls, k)
		if len(calls) == 0 {
			delete(t.byConn, connID)
		}
	}
}

// connGone tells every call connection connID is in that it closed,
// wherever the call runs.
func (t *callTable) connGone(connID string) {
	t.nmu.Lock()
	calls := t.byConn[connID]
	delete(t.byConn, connID)
	t.nmu.Unlock()
	for k := range calls {
		t.route(k, &pb.ConnGone{ConnId: connID})
	}
}

// membersChanged asks every call of this node to drop the participants
// of nodes that left.
func (t *callTable) membersChanged() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, pid := range s.m {
			t.e.system.Root.Send(pid, &membersChanged{})
		}
		s.mu.Unlock()
	}
}

// stopAll poisons every call and waits for them to stop.
func (t *callTable) stopAll(ctx context.Context) {
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
	t.nmu.Lock()
	t.n = 0
	t.nmu.Unlock()
	for _, f := range futures {
		if ctx.Err() != nil {
			return
		}
		_ = f.Wait()
	}
}

// ActiveCalls returns the number of active calls on this node.
func (e *Engine) ActiveCalls() int { return e.calls.len() }
