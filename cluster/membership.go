package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures membership.
type Config struct {
	// Name is the cluster name; nodes of another name do not join.
	Name string
	// NodeID names this node (unique per process start).
	NodeID string
	// Bind is the gossip host:port.
	Bind string
	// Advertise is the gossip host:port others reach (default Bind).
	Advertise string
	// Seeds are gossip addresses to join; joining is retried until one answers.
	Seeds []string
	// Secret encrypts gossip; nodes with another secret cannot join.
	Secret string
	// RemoteAddr and HTTPAddr are published to the other members.
	RemoteAddr, HTTPAddr string
	// JoinRetry is the pause between join attempts.
	JoinRetry time.Duration
}

// Membership runs memberlist and keeps the current View.
type Membership struct {
	cfg    Config
	logger *slog.Logger
	mc     memberlist.Config // template for (re)creating the member

	listMu sync.RWMutex // guards list and self, which change on a rejoin
	list   *memberlist.Memberlist
	self   Member
	rejoin int

	view atomic.Pointer[View]

	changed chan struct{}
	mu      sync.Mutex
	subs    []func(*View)
	version atomic.Uint64
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

// Start creates the gossip member and starts joining the seeds.
func Start(cfg Config, logger *slog.Logger) (*Membership, error) {
	host, portText, err := net.SplitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("CLUSTER_BIND %q: %w", cfg.Bind, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("CLUSTER_BIND %q: %w", cfg.Bind, err)
	}
	if cfg.JoinRetry <= 0 {
		cfg.JoinRetry = 500 * time.Millisecond
	}
	m := &Membership{cfg: cfg, logger: logger, changed: make(chan struct{}, 1)}
	m.self = Member{ID: cfg.NodeID, RemoteAddr: cfg.RemoteAddr, HTTPAddr: cfg.HTTPAddr}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	if cfg.Advertise != "" {
		ah, ap, err := net.SplitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("CLUSTER_ADVERTISE %q: %w", cfg.Advertise, err)
		}
		mc.AdvertiseAddr = ah
		if mc.AdvertisePort, err = strconv.Atoi(ap); err != nil {
			return nil, fmt.Errorf("CLUSTER_ADVERTISE %q: %w", cfg.Advertise, err)
		}
	}
	// A dead node is noticed in about 2 s (default: about 7 s).
	mc.ProbeInterval = 200 * time.Millisecond
	mc.ProbeTimeout = 150 * time.Millisecond
	mc.SuspicionMult = 2
	mc.GossipInterval = 100 * time.Millisecond
	mc.PushPullInterval = 5 * time.Second
	mc.DeadNodeReclaimTime = time.Second
	mc.Label = cfg.Name
	if cfg.Secret != "" {
		key := sha256.Sum256([]byte(cfg.Secret))
		mc.SecretKey = key[:]
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Delegate = &delegate{m: m}
	mc.Events = &events{m: m}
	mc.Logger = log.New(io.Discard, "", 0)
	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", cfg.Bind, err)
	}
	m.mc = *mc
	m.mc.BindPort = int(list.LocalNode().Port)
	if cfg.Advertise == "" {
		m.mc.AdvertisePort = m.mc.BindPort
	}
	m.list = list
	m.self.GossipAddr = list.LocalNode().Address()
	m.refresh()
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(3)
	go m.watch(ctx)
	go m.join(ctx)
	go m.guard(ctx)
	return m, nil
}

// Self returns this node.
func (m *Membership) Self() Member {
	m.listMu.RLock()
	defer m.listMu.RUnlock()
	return m.self
}

func (m *Membership) members() *memberlist.Memberlist {
	m.listMu.RLock()
	defer m.listMu.RUnlock()
	return m.list
}

// pausedAfter is how long a node may stand still (SIGSTOP, a VM pause, a
// long stall) before it must assume its peers declared it dead.
const pausedAfter = 2 * time.Second

// guard notices that this process stood still long enough for its peers
// to declare it dead, and then rejoins as a new member: the rooms it held
// have moved, and their leases fence what it still runs.
func (m *Membership) guard(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// The tick carries the time it was due, not the time it came:
			// read the clock.
			if gap := time.Since(last); gap > pausedAfter {
				m.logger.Warn("node stood still; rejoining the cluster as a new member", "paused", gap.Round(time.Millisecond))
				if err := m.rejoinAsNew(ctx); err != nil {
					m.logger.Error("rejoin failed", "err", err)
				}
			}
			last = time.Now()
		}
	}
}

// rejoinAsNew leaves gossip without a goodbye and joins again under a new
// member id.
func (m *Membership) rejoinAsNew(ctx context.Context) error {
	m.listMu.Lock()
	old := m.list
	m.rejoin++
	m.self.ID = fmt.Sprintf("%s-r%d", m.cfg.NodeID, m.rejoin)
	mc := m.mc
	mc.Name = m.self.ID
	m.listMu.Unlock()
	_ = old.Shutdown()
	list, err := memberlist.Create(&mc)
	if err != nil {
		return fmt.Errorf("cluster: recreate gossip member: %w", err)
	}
	m.listMu.Lock()
	m.list = list
	m.listMu.Unlock()
	m.refresh()
	m.wg.Add(1)
	go m.join(ctx)
	return nil
}

// View returns the current live members.
func (m *Membership) View() *View { return m.view.Load() }

// Subscribe calls fn with every new view, from one goroutine, in order.
func (m *Membership) Subscribe(fn func(*View)) {
	m.mu.Lock()
	m.subs = append(m.subs, fn)
	m.mu.Unlock()
}

// join contacts the seeds until one answers; nodes started together would
// otherwise stay apart.
func (m *Membership) join(ctx context.Context) {
	defer m.wg.Done()
	var seeds []string
	for _, s := range m.cfg.Seeds {
		if s != m.Self().GossipAddr && s != m.cfg.Bind && s != m.cfg.Advertise {
			seeds = append(seeds, s)
		}
	}
	for attempt := 1; len(seeds) > 0; attempt++ {
		list := m.members()
		n, err := list.Join(seeds)
		if n > 0 {
			m.logger.Info("joined cluster", "contacted", n, "members", list.NumMembers())
			return
		}
		// Nodes started together miss each other for a moment; a node
		// that stays alone for many attempts is worth a warning.
		level := slog.LevelDebug
		if attempt%10 == 0 {
			level = slog.LevelWarn
		}
		m.logger.Log(ctx, level, "cluster join failed; retrying", "seeds", seeds, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.cfg.JoinRetry):
		}
	}
}

// watch rebuilds the view after memberlist events; the events arrive under
// memberlist's locks, so they only signal.
func (m *Membership) watch(ctx context.Context) {
	defer m.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.changed:
			m.refresh()
		}
	}
}

func (m *Membership) refresh() {
	var members []Member
	for _, n := range m.members().Members() {
		var meta Member
		if json.Unmarshal(n.Meta, &meta) != nil || meta.ID == "" {
			continue
		}
		meta.GossipAddr = n.Address()
		members = append(members, meta)
	}
	v := newView(members, m.version.Add(1))
	m.view.Store(v)
	m.mu.Lock()
	subs := slices.Clone(m.subs)
	m.mu.Unlock()
	for _, fn := range subs {
		fn(v)
	}
}

func (m *Membership) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Leave tells the others this node is going, then stops gossip.
func (m *Membership) Leave(timeout time.Duration) {
	if err := m.members().Leave(timeout); err != nil {
		m.logger.Warn("cluster leave", "err", err)
	}
	m.Close()
}

// Close stops gossip without a goodbye (the others detect the absence).
func (m *Membership) Close() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.wg.Wait()
	_ = m.members().Shutdown()
	m.cancel = nil
}

type delegate struct{ m *Membership }

func (d *delegate) NodeMeta(limit int) []byte {
	self := d.m.Self()
	b, _ := json.Marshal(Member{ID: self.ID, RemoteAddr: self.RemoteAddr, HTTPAddr: self.HTTPAddr})
	if len(b) > limit {
		return nil
	}
	return b
}
func (d *delegate) NotifyMsg([]byte)                {}
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *delegate) LocalState(bool) []byte          { return nil }
func (d *delegate) MergeRemoteState([]byte, bool)   {}

type events struct{ m *Membership }

func (e *events) NotifyJoin(*memberlist.Node)   { e.m.signal() }
func (e *events) NotifyLeave(*memberlist.Node)  { e.m.signal() }
func (e *events) NotifyUpdate(*memberlist.Node) { e.m.signal() }
