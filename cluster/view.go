package cluster

import (
	"hash/fnv"
	"sort"
)

// Member is one live node as the others see it.
type Member struct {
	// ID names the node; unique per process start (a restarted node is a
	// new member).
	ID string `json:"id"`
	// RemoteAddr is the node's actor (protoactor remote) address.
	RemoteAddr string `json:"remote_addr"`
	// HTTPAddr is the node's client and API address.
	HTTPAddr string `json:"http_addr"`
	// GossipAddr is the node's memberlist address.
	GossipAddr string `json:"gossip_addr"`
}

// View is an immutable list of live members, sorted by ID.
type View struct {
	Members []Member
	Version uint64
}

// Owner returns the member that owns key: the one with the highest
// rendezvous score, so that a membership change moves only the keys of the
// members that came or went.
func (v *View) Owner(key string) (Member, bool) { return v.OwnerExcept(key, "") }

// OwnerExcept is Owner without the member except (a node that drains).
func (v *View) OwnerExcept(key, except string) (Member, bool) {
	var best Member
	var bestScore uint64
	found := false
	for _, m := range v.Members {
		if m.ID == except {
			continue
		}
		s := score(m.ID, key)
		if !found || s > bestScore || (s == bestScore && m.ID < best.ID) {
			best, bestScore, found = m, s, true
		}
	}
	return best, found
}

// Has reports whether a member with id is live.
func (v *View) Has(id string) bool {
	for _, m := range v.Members {
		if m.ID == id {
			return true
		}
	}
	return false
}

// ByRemote finds the member with a remote address.
func (v *View) ByRemote(addr string) (Member, bool) {
	for _, m := range v.Members {
		if m.RemoteAddr == addr {
			return m, true
		}
	}
	return Member{}, false
}

func score(node, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(node))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	// A finaliser (splitmix64) spreads FNV's weak low bits.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func newView(members []Member, version uint64) *View {
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	return &View{Members: members, Version: version}
}
