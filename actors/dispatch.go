package actors

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of the engine's mailbox workers.
const (
	mailboxWorkers    = 64
	mailboxThroughput = 300 // messages an actor handles before it yields, as protoactor's default
	// mailboxQueue bounds the mailbox runs waiting for a worker; past it a
	// run gets a goroutine of its own, as with protoactor's default.
	mailboxQueue = 16384
	// mailboxStall is how long runs may wait without any run finishing
	// before another worker is woken: the running ones may be waiting on a
	// store.
	mailboxStall = 2 * time.Millisecond
)

// workerDispatcher runs actor mailboxes on long-lived workers fed by a
// bounded queue, and wakes no more workers than there are Ps to run them.
// protoactor's default dispatcher starts a goroutine per mailbox run, and a
// pool that wakes a worker per run does about the same: on a busy node
// dozens of them wait in the scheduler's run queue, and every goroutine
// woken by the network (a Kafka ack, a Redis reply) waits behind them.
// A worker drains the queue before it parks; a worker that blocks (a store
// call) is covered by the stall check, which wakes another.
type workerDispatcher struct {
	procs int

	mu     sync.Mutex
	ring   []func()
	head   int
	n      int
	limit  int
	busy   int // workers running or woken
	parked int
	stop   bool

	wake     chan struct{} // one token per worker woken
	done     atomic.Uint64 // runs finished
	watching atomic.Bool   // a stall check is armed
}

func newWorkerDispatcher(queue int) *workerDispatcher {
	return &workerDispatcher{
		procs: runtime.GOMAXPROCS(0), limit: queue,
		ring: make([]func(), min(queue, 256)), wake: make(chan struct{}, mailboxWorkers),
	}
}

// Schedule implements actor.Dispatcher; it never blocks.
func (d *workerDispatcher) Schedule(fn func()) {
	d.mu.Lock()
	if d.stop || !d.push(fn) {
		d.mu.Unlock()
		go fn()
		return
	}
	woke := d.busy < d.procs && d.wakeLocked()
	d.mu.Unlock()
	if !woke {
		d.watch()
	}
}

// push appends fn to the ring, growing it up to limit.
func (d *workerDispatcher) push(fn func()) bool {
	if d.n == len(d.ring) {
		if d.n >= d.limit {
			return false
		}
		grown := make([]func(), min(2*len(d.ring), d.limit))
		for i := range d.n {
			grown[i] = d.ring[(d.head+i)%len(d.ring)]
		}
		d.ring, d.head = grown, 0
	}
	d.ring[(d.head+d.n)%len(d.ring)] = fn
	d.n++
	return true
}

// pop takes the oldest run, or nil.
func (d *workerDispatcher) pop() func() {
	if d.n == 0 {
		return nil
	}
	fn := d.ring[d.head]
	d.ring[d.head] = nil
	d.head = (d.head + 1) % len(d.ring)
	d.n--
	return fn
}

// wakeLocked wakes a parked worker, if there is one.
func (d *workerDispatcher) wakeLocked() bool {
	if d.parked == 0 {
		return false
	}
	d.parked--
	d.busy++
	d.wake <- struct{}{} // capacity is the number of workers: never blocks
	return true
}

// watch arms a stall check while runs wait: if none finishes within
// mailboxStall, another worker is woken (or, with none parked, a helper
// started), so that workers blocked on a slow store do not hold up actors
// that are ready to go. It re-arms itself while runs still wait.
func (d *workerDispatcher) watch() {
	if !d.watching.CompareAndSwap(false, true) {
		return
	}
	mark := d.done.Load()
	time.AfterFunc(mailboxStall, func() {
		d.watching.Store(false)
		d.mu.Lock()
		waiting, stalled := d.n > 0 && !d.stop, d.done.Load() == mark
		helper := waiting && stalled && !d.wakeLocked()
		d.mu.Unlock()
		if helper {
			go d.help()
		}
		if waiting {
			d.watch()
		}
	})
}

// help runs queued mailboxes until the queue is empty.
func (d *workerDispatcher) help() {
	for {
		d.mu.Lock()
		fn := d.pop()
		d.mu.Unlock()
		if fn == nil {
			return
		}
		d.runOne(fn)
	}
}

func (d *workerDispatcher) runOne(fn func()) {
	fn()
	d.done.Add(1)
}

// Throughput implements actor.Dispatcher.
func (d *workerDispatcher) Throughput() int { return mailboxThroughput }

// run runs the workers until ctx ends. Runs still queued then, and any
// scheduled later, get goroutines of their own: a mailbox that was
// scheduled must run, or its actor never hears from it again.
func (d *workerDispatcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	d.mu.Lock()
	d.busy += mailboxWorkers
	d.mu.Unlock()
	for range mailboxWorkers {
		wg.Go(func() { d.work(ctx) })
	}
	wg.Wait()
	d.mu.Lock()
	d.stop = true
	var left []func()
	for fn := d.pop(); fn != nil; fn = d.pop() {
		left = append(left, fn)
	}
	d.mu.Unlock()
	for _, fn := range left {
		go fn()
	}
}

// work runs queued mailboxes, parking while there are none.
func (d *workerDispatcher) work(ctx context.Context) {
	for {
		d.mu.Lock()
		fn := d.pop()
		if fn == nil {
			d.busy--
			d.parked++
		}
		d.mu.Unlock()
		if fn != nil {
			d.runOne(fn)
			continue
		}
		select {
		case <-d.wake: // the waker counted this worker busy again
		case <-ctx.Done():
			return
		}
	}
}
