package server

import (
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caasd/caasd/admin"
	"github.com/caasd/caasd/cluster"
)

// placement places virtual actors on the gossip members. While the node
// drains it places nothing on itself.
type placement struct {
	m        *cluster.Membership
	draining atomic.Bool
}

func (p *placement) NodeID() string { return p.m.Self().ID }

func (p *placement) Owner(key string) (string, bool) {
	v := p.m.View()
	self := p.m.Self()
	except := ""
	if p.draining.Load() {
		except = self.ID
	}
	o, ok := v.OwnerExcept(key, except)
	if !ok {
		return self.RemoteAddr, true
	}
	return o.RemoteAddr, o.ID == self.ID
}

func (p *placement) AliveNode(id string) bool { return p.m.View().Has(id) }

func (p *placement) AliveAddr(addr string) bool {
	_, ok := p.m.View().ByRemote(addr)
	return ok
}

// startCluster starts actor remoting and gossip membership, and moves rooms
// whenever the members change.
func (s *Server) startCluster() error {
	host, portText, err := net.SplitHostPort(s.cfg.Cluster.RemoteBind)
	if err != nil {
		return fmt.Errorf("CLUSTER_REMOTE_BIND: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("CLUSTER_REMOTE_BIND: %w", err)
	}
	remoteAddr, err := s.engine.StartRemote(host, port, s.cfg.Cluster.RemoteAdvertise)
	if err != nil {
		return err
	}
	s.members, err = cluster.Start(cluster.Config{
		Name: s.cfg.Cluster.Name, NodeID: s.cfg.NodeID, Bind: s.cfg.Cluster.Bind, Advertise: s.cfg.Cluster.Advertise,
		Seeds: s.cfg.Cluster.Seeds, Secret: s.cfg.Cluster.Secret, RemoteAddr: remoteAddr, HTTPAddr: s.httpAdvertise(),
	}, s.logger.With("component", "cluster"))
	if err != nil {
		return err
	}
	s.place = &placement{m: s.members}
	s.engine.SetPlacement(s.place)
	s.members.Subscribe(func(*cluster.View) { s.engine.Rebalance() })
	(&admin.Cluster{Members: s.members, Stats: s.engine, Verifier: s.verifier}).Register(s.mux)
	s.engine.Start()
	s.logger.Info("cluster member", "node", s.cfg.NodeID, "gossip", s.members.Self().GossipAddr, "remote", remoteAddr, "seeds", s.cfg.Cluster.Seeds)
	return nil
}

// httpAdvertise is the HTTP address other members show for this node.
func (s *Server) httpAdvertise() string {
	if s.listener != nil {
		return s.listener.Addr().String()
	}
	return s.cfg.HTTPAddr
}

// leaveCluster tells the members this node goes, and stops placing rooms
// on it, so its rooms move before its sockets close.
func (s *Server) leaveCluster() {
	if s.place == nil {
		return
	}
	s.place.draining.Store(true)
	s.engine.Rebalance()
	s.members.Leave(2 * time.Second)
}
