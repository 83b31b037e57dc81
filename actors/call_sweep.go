package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/caasd/caasd/internal/wire"
)

// reasonMoved is the call:ended reason of a call whose key another node
// owns since the members changed: calls have no snapshot to move with.
const reasonMoved = "moved"

// membersChanged asks a call to drop the participants of nodes that left.
type membersChanged struct{}

// sweep drops participants whose local connection is gone or whose node
// left, ends an activation that never started, and ends a call whose key
// another node owns now (nothing reaches it any more).
func (c *call) sweep(ctx actor.Context) {
	if !c.started || c.passivating {
		c.passivate(ctx)
		return
	}
	if _, self := c.e.place().Owner(c.key.key()); !self {
		c.finish(ctx, reasonMoved, "", "", 0)
		return
	}
	for id, p := range c.conns {
		if p.t.ref.Address != c.e.system.Address() {
			continue // the connection's node reports it gone
		}
		if _, ok := c.e.deps.Conns.Get(id); !ok {
			c.leave(ctx, id, nil, 0, wire.ReasonDisconnected)
		}
	}
	c.dropDeparted(ctx)
	for u, w := range c.signals {
		if time.Since(w.start) > time.Second {
			delete(c.signals, u)
		}
	}
}

// dropDeparted drops the participants connected to nodes that left the
// cluster.
func (c *call) dropDeparted(ctx actor.Context) {
	for id, p := range c.conns {
		if c.passivating {
			return
		}
		if a := p.t.ref.Address; a != c.e.system.Address() && !c.e.place().AliveAddr(a) {
			c.leave(ctx, id, nil, 0, wire.ReasonDisconnected)
		}
	}
}
