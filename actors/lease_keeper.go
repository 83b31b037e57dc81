package actors

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/caasd/caasd/persistence"
)

// leaseLost tells a room that another activation took its lease.
type leaseLost struct{}

// leaseKeeper renews the leases of every room of this node in one Redis
// round trip per interval, on its own goroutine: a room whose mailbox is
// busy still keeps its lease, and a room learns it lost one at once.
type leaseKeeper struct {
	e      *Engine
	mu     sync.Mutex
	leases map[roomKey]keptLease
}

type keptLease struct {
	lease *persistence.Lease
	pid   *actor.PID
}

func newLeaseKeeper(e *Engine) *leaseKeeper {
	return &leaseKeeper{e: e, leases: map[roomKey]keptLease{}}
}

func (k *leaseKeeper) add(key roomKey, l *persistence.Lease, pid *actor.PID) {
	k.mu.Lock()
	k.leases[key] = keptLease{lease: l, pid: pid}
	k.mu.Unlock()
}

func (k *leaseKeeper) remove(key roomKey, l *persistence.Lease) {
	k.mu.Lock()
	if cur, ok := k.leases[key]; ok && cur.lease == l {
		delete(k.leases, key)
	}
	k.mu.Unlock()
}

// run renews every lease each leaseRenewEvery until ctx ends.
func (k *leaseKeeper) run(ctx context.Context) {
	t := time.NewTicker(leaseRenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.renew(ctx)
		}
	}
}

func (k *leaseKeeper) renew(ctx context.Context) {
	k.mu.Lock()
	keys := make([]roomKey, 0, len(k.leases))
	refs := make([]persistence.LeaseRef, 0, len(k.leases))
	pids := make([]*actor.PID, 0, len(k.leases))
	for key, kl := range k.leases {
		keys = append(keys, key)
		refs = append(refs, persistence.LeaseRef{Tenant: key.tenant, Conv: key.conv, Lease: kl.lease})
		pids = append(pids, kl.pid)
	}
	k.mu.Unlock()
	if len(refs) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, leaseRenewEvery)
	defer cancel()
	errs, err := k.e.deps.Leases.RenewAll(rctx, refs)
	if err != nil {
		k.e.deps.Logger.Warn("lease renewal failed", "leases", len(refs), "err", err)
		return
	}
	for i, err := range errs {
		if errors.Is(err, persistence.ErrFenced) {
			k.remove(keys[i], refs[i].Lease)
			k.e.system.Root.Send(pids[i], &leaseLost{})
		}
	}
}
