package actors

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	pb "github.com/caasd/caasd/actors/actorspb"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/transport"
)

// Placement says which node owns a virtual actor.
type Placement interface {
	// NodeID is this node's member id (unique per process start).
	NodeID() string
	// Owner returns the actor address of the node owning key, and whether
	// that is this node.
	Owner(key string) (addr string, self bool)
	// AliveNode reports whether a member with id is live.
	AliveNode(id string) bool
	// AliveAddr reports whether a member with this actor address is live.
	AliveAddr(addr string) bool
}

// LeaseStore fences room activations.
type LeaseStore interface {
	Acquire(ctx context.Context, tenant, conv, node string, force bool) (*persistence.Lease, string, error)
	Renew(ctx context.Context, tenant, conv string, l *persistence.Lease) error
	Release(ctx context.Context, tenant, conv string, l *persistence.Lease) error
	RenewAll(ctx context.Context, refs []persistence.LeaseRef) ([]error, error)
}

// Names of each node's well-known actors.
const (
	routerName   = "rooms"
	deliveryName = "deliver"
)

// StartRemote starts protoactor's remote on host:port (port 0: any) so that
// other nodes reach this node's actors, and returns its address.
func (e *Engine) StartRemote(host string, port int, advertise string) (string, error) {
	// remote panics when it cannot listen: find out first.
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return "", fmt.Errorf("actor remote on %s:%d: %w", host, port, err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	opts := []remote.ConfigOption{remote.WithEndpointWriterQueueSize(100000), remote.WithEndpointManagerQueueSize(100000)}
	if advertise != "" {
		opts = append(opts, remote.WithAdvertisedHost(advertise))
	}
	e.remote = remote.NewRemote(e.system, remote.Configure(host, port, opts...))
	e.remote.Start()
	return e.system.Address(), nil
}

// SetPlacement makes the engine place rooms on the cluster's members.
func (e *Engine) SetPlacement(p Placement) { e.placement.Store(&p) }

func (e *Engine) place() Placement { return *e.placement.Load() }

// spawnNodeActors starts the router and the delivery actor under their
// well-known names.
func (e *Engine) spawnNodeActors() {
	_, _ = e.system.Root.SpawnNamed(actor.PropsFromFunc(e.routeEnvelope), routerName)
	_, _ = e.system.Root.SpawnNamed(actor.PropsFromFunc(e.deliverLocal), deliveryName)
}

// routeEnvelope receives requests for rooms this node owns.
func (e *Engine) routeEnvelope(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pb.RoomEnvelope:
		k := roomKey{m.Tenant, m.Conversation}
		payload := unwrap(m)
		if payload == nil {
			return
		}
		// Views may disagree for a moment: a request that reached a node
		// that does not own the room is passed on, at most twice.
		if addr, self := e.place().Owner(k.key()); !self && m.Hops < 2 {
			m.Hops++
			ctx.RequestWithCustomSender(actor.NewPID(addr, routerName), m, ctx.Sender())
			return
		}
		e.rooms.local(k, payload, ctx.Sender())
	case *pb.CallEnvelope:
		e.routeCall(ctx, m)
	case *pb.NodeStatsRequest:
		ctx.Respond(&pb.NodeStats{NodeId: e.place().NodeID(), Rooms: int64(e.rooms.len()), Calls: int64(e.calls.len()), Connections: int64(e.deps.Conns.Len())})
	}
}

// deliverLocal hands a room's fan-out to this node's connections.
func (e *Engine) deliverLocal(ctx actor.Context) {
	m, ok := ctx.Message().(*pb.NodeDeliver)
	if !ok {
		return
	}
	f := transport.NewFrame(m.Name, m.Data)
	for _, id := range m.ConnIds {
		c, ok := e.deps.Conns.Get(id)
		if !ok {
			// The connection is gone: the room stops sending to it.
			e.rooms.send(roomKey{m.Tenant, m.Conversation}, &pb.ConnGone{ConnId: id})
			continue
		}
		c.Reply(m.Ack, f)
	}
}

func (k roomKey) key() string { return k.tenant + "/" + k.conv }

// wrap puts a room request in an envelope for another node.
func wrap(k roomKey, msg any) *pb.RoomEnvelope {
	env := &pb.RoomEnvelope{Tenant: k.tenant, Conversation: k.conv}
	switch m := msg.(type) {
	case *pb.JoinRoom:
		env.Payload = &pb.RoomEnvelope_Join{Join: m}
	case *pb.LeaveRoom:
		env.Payload = &pb.RoomEnvelope_Leave{Leave: m}
	case *pb.ConnGone:
		env.Payload = &pb.RoomEnvelope_Gone{Gone: m}
	case *pb.SendMessage:
		env.Payload = &pb.RoomEnvelope_Send{Send: m}
	case *pb.Moderate:
		env.Payload = &pb.RoomEnvelope_Moderate{Moderate: m}
	case *pb.Typing:
		env.Payload = &pb.RoomEnvelope_Typing{Typing: m}
	case *pb.ReadMarker:
		env.Payload = &pb.RoomEnvelope_Read{Read: m}
	case *pb.HistoryRequest:
		env.Payload = &pb.RoomEnvelope_History{History: m}
	case *pb.RoomInfoRequest:
		env.Payload = &pb.RoomEnvelope_Info{Info: m}
	case *pb.Invalidate:
		env.Payload = &pb.RoomEnvelope_Invalidate{Invalidate: m}
	default:
		return nil
	}
	return env
}

func unwrap(env *pb.RoomEnvelope) any {
	switch p := env.Payload.(type) {
	case *pb.RoomEnvelope_Join:
		return p.Join
	case *pb.RoomEnvelope_Leave:
		return p.Leave
	case *pb.RoomEnvelope_Gone:
		return p.Gone
	case *pb.RoomEnvelope_Send:
		return p.Send
	case *pb.RoomEnvelope_Moderate:
		return p.Moderate
	case *pb.RoomEnvelope_Typing:
		return p.Typing
	case *pb.RoomEnvelope_Read:
		return p.Read
	case *pb.RoomEnvelope_History:
		return p.History
	case *pb.RoomEnvelope_Info:
		return p.Info
	case *pb.RoomEnvelope_Invalidate:
		return p.Invalidate
	}
	return nil
}

// localPlacement is a cluster of one.
type localPlacement struct{ id, addr string }

func (l localPlacement) NodeID() string              { return l.id }
func (l localPlacement) Owner(string) (string, bool) { return l.addr, true }
func (l localPlacement) AliveNode(id string) bool    { return id == l.id }
func (l localPlacement) AliveAddr(addr string) bool  { return addr == l.addr }

// NodeStats asks the node actor at addr for its counts.
func (e *Engine) NodeStats(ctx context.Context, addr string) (*pb.NodeStats, error) {
	res, err := e.system.Root.RequestFuture(actor.NewPID(addr, routerName), &pb.NodeStatsRequest{}, adminTimeout).Result()
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", addr, err)
	}
	st, ok := res.(*pb.NodeStats)
	if !ok {
		return nil, fmt.Errorf("node %s: unexpected answer %T", addr, res)
	}
	return st, nil
}
