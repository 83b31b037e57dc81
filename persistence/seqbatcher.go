package persistence

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// AssignRequest is one room's batch for the SeqBatcher. Done is called
// exactly once with the batch's outcome (ErrFenced when the lease is no
// longer the room's), from the batcher's goroutine; it must not block.
type AssignRequest struct {
	AssignBatch
	Done func([]Assignment, error)
}

// SeqBatcherConfig bounds a SeqBatcher.
type SeqBatcherConfig struct {
	// QueueLen bounds the requests waiting for a round trip.
	QueueLen int
	// MaxBatch bounds the scripts sent in one pipeline.
	MaxBatch int
	// Timeout bounds one round trip.
	Timeout time.Duration
	// InFlight bounds the pipelines in flight at once, each on a
	// connection of its own: while one waits for Redis the next batch
	// goes, instead of waiting for it.
	InFlight int
}

// SeqBatcher sends the sequence assignments of every room of a node to
// Redis together: the scripts of all requests waiting at the time go in one
// pipeline, one round trip, instead of one round trip per room flush; up to
// InFlight pipelines go at once. A request does not wait for others to
// join it: under load they gather by themselves while the pipelines in
// flight wait for Redis, and a timer to wait on would fire late whenever
// the node's core is busy, which is when batching matters. Each script
// stays atomic and checks its room's lease as Assign does. The batcher
// does not order requests of one room: a room sends its next request only
// after the previous one's Done.
type SeqBatcher struct {
	seq   *Sequencer
	cfg   SeqBatcherConfig
	queue chan *AssignRequest
	// gathering is held by the one sender gathering a batch: senders
	// taking turns at the queue would split it into batches of one.
	gathering chan struct{}

	mu     sync.RWMutex
	closed bool
}

// NewSeqBatcher returns a batcher over seq; Run drives it.
func NewSeqBatcher(seq *Sequencer, cfg SeqBatcherConfig) *SeqBatcher {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 16384
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 4
	}
	return &SeqBatcher{seq: seq, cfg: cfg, queue: make(chan *AssignRequest, cfg.QueueLen), gathering: make(chan struct{}, 1)}
}

// Submit queues r without blocking: ErrSeqBusy when the queue is full,
// ErrSeqClosed once the batcher stopped. On an error Done is not called.
func (b *SeqBatcher) Submit(r *AssignRequest) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrSeqClosed
	}
	select {
	case b.queue <- r:
		return nil
	default:
		return ErrSeqBusy
	}
}

// Run sends the queued requests until ctx ends, with InFlight senders;
// then every request still queued gets ErrSeqClosed and Submit refuses new
// ones.
func (b *SeqBatcher) Run(ctx context.Context) {
	defer b.close()
	var wg sync.WaitGroup
	for range b.cfg.InFlight {
		wg.Go(func() { b.sender(ctx) })
	}
	wg.Wait()
}

// sender takes a request, gathers what else waits and sends them in one
// pipeline, until ctx ends.
func (b *SeqBatcher) sender(ctx context.Context) {
	batch := make([]*AssignRequest, 0, b.cfg.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case b.gathering <- struct{}{}:
		}
		select {
		case <-ctx.Done():
			<-b.gathering
			return
		case r := <-b.queue:
			batch = append(batch[:0], r)
		}
		batch = b.gather(batch)
		<-b.gathering
		b.send(ctx, batch)
		clear(batch)
	}
}

// gather adds what is queued to batch, up to MaxBatch.
func (b *SeqBatcher) gather(batch []*AssignRequest) []*AssignRequest {
	for len(batch) < b.cfg.MaxBatch {
		select {
		case r := <-b.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// send runs one pipeline for batch and answers each request.
func (b *SeqBatcher) send(ctx context.Context, batch []*AssignRequest) {
	// A round trip that began is finished even as ctx ends: its answers
	// are what the rooms wait for.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.Timeout)
	defer cancel()
	bs := make([]*AssignBatch, len(batch))
	for i, r := range batch {
		bs[i] = &r.AssignBatch
	}
	res, errs := b.seq.AssignMany(sctx, bs)
	for i, r := range batch {
		r.Done(res[i], errs[i])
	}
}

// close refuses new requests and answers the queued ones.
func (b *SeqBatcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	for {
		select {
		case r := <-b.queue:
			r.Done(nil, fmt.Errorf("assign seq: %w", ErrSeqClosed))
		default:
			return
		}
	}
}
