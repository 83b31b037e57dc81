package transport

import (
	"hash/maphash"
	"sync"
)

const registryShards = 64

// Registry holds this node's open connections by id, sharded so that
// connects and disconnects do not contend on one lock.
type Registry struct {
	seed   maphash.Seed
	shards [registryShards]struct {
		mu sync.RWMutex
		m  map[string]Conn
	}
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[string]Conn)
	}
	return r
}

func (r *Registry) shard(id string) int {
	return int(maphash.String(r.seed, id) % registryShards)
}

// Add registers c.
func (r *Registry) Add(c Conn) {
	s := &r.shards[r.shard(c.ID())]
	s.mu.Lock()
	s.m[c.ID()] = c
	s.mu.Unlock()
}

// Remove unregisters c.
func (r *Registry) Remove(c Conn) {
	s := &r.shards[r.shard(c.ID())]
	s.mu.Lock()
	if s.m[c.ID()] == c {
		delete(s.m, c.ID())
	}
	s.mu.Unlock()
}

// Get returns the connection with id.
func (r *Registry) Get(id string) (Conn, bool) {
	s := &r.shards[r.shard(id)]
	s.mu.RLock()
	c, ok := s.m[id]
	s.mu.RUnlock()
	return c, ok
}

// Len returns the number of connections.
func (r *Registry) Len() int {
	n := 0
	for i := range r.shards {
		r.shards[i].mu.RLock()
		n += len(r.shards[i].m)
		r.shards[i].mu.RUnlock()
	}
	return n
}

// Each calls fn for every connection; fn must not call back into r.
func (r *Registry) Each(fn func(Conn)) {
	var batch []Conn
	for i := range r.shards {
		batch = batch[:0]
		r.shards[i].mu.RLock()
		for _, c := range r.shards[i].m {
			batch = append(batch, c)
		}
		r.shards[i].mu.RUnlock()
		for _, c := range batch {
			fn(c)
		}
	}
}
