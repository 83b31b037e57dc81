package persistence

import (
	"context"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// persistHandler runs one pipeline per consumer group session.
type persistHandler struct {
	p   *Persister
	ctx context.Context // Run's: in-flight inserts outlive a rebalance
	cur *pipeline       // set in Setup, read by ConsumeClaim, cleared in Cleanup
}

// Setup starts the session's pipeline.
func (h *persistHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.cur = startPipeline(h.ctx, h.p, sess)
	return nil
}

// Cleanup stops the session's pipeline: batches MongoDB is writing are
// finished and their offsets committed; records not yet in a batch are
// left to whoever consumes their partition next.
func (h *persistHandler) Cleanup(sarama.ConsumerGroupSession) error {
	if h.cur != nil {
		h.cur.stop()
		h.cur = nil
	}
	return nil
}

// ConsumeClaim feeds the claim's records into the session's intake.
func (h *persistHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	in := h.cur.in
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case in <- msg:
			case <-sess.Context().Done():
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// pipeline is one session's batching, inserting and committing. Its
// goroutines are owned by the session: started in Setup, stopped and
// waited for in Cleanup.
type pipeline struct {
	p    *Persister
	sess sarama.ConsumerGroupSession
	ctx  context.Context // for insert attempts: Run's context
	// in is the bounded intake of every claim of the session.
	in chan *sarama.ConsumerMessage
	// flights carries batches to mark in intake order.
	flights chan *flight
	// dirty says offsets were marked since the last commit.
	dirty chan struct{}
	// marked is closed once marking is over.
	marked chan struct{}
	quit   chan struct{}
	wg     sync.WaitGroup
}

// flight is one batch on its way into MongoDB.
type flight struct {
	records []*sarama.ConsumerMessage
	done    chan struct{}
	err     error // set before done is closed
}

func startPipeline(ctx context.Context, p *Persister, sess sarama.ConsumerGroupSession) *pipeline {
	pl := &pipeline{
		p: p, sess: sess, ctx: ctx,
		in:      make(chan *sarama.ConsumerMessage, p.cfg.BatchSize),
		flights: make(chan *flight, p.cfg.Concurrency),
		dirty:   make(chan struct{}, 1),
		marked:  make(chan struct{}),
		quit:    make(chan struct{}),
	}
	pl.wg.Add(3)
	go func() {
		defer pl.wg.Done()
		defer close(pl.flights)
		pl.gather()
	}()
	go func() {
		defer pl.wg.Done()
		pl.mark()
	}()
	go func() {
		defer pl.wg.Done()
		pl.flushCommits()
	}()
	return pl
}

// stop ends gathering, waits for the inserts in flight and commits what
// MongoDB has.
func (pl *pipeline) stop() {
	close(pl.quit)
	pl.wg.Wait()
}

// gather makes batches: it waits for a first record, then keeps taking
// records until an insert slot is free (or the batch is full), tops the
// batch up with whatever has already arrived and sends it off.
func (pl *pipeline) gather() {
	size, linger := pl.p.cfg.BatchSize, pl.p.cfg.Linger
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	defer wait.Stop()
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case m := <-pl.in:
			batch = append(make([]*sarama.ConsumerMessage, 0, size), m)
		case <-pl.quit:
			return
		}
		// The batch takes a slot once one is free and its linger is over,
		// or once it is full; it gathers what arrives meanwhile.
		slots, lingering := pl.p.slots, wait.C
		if linger > 0 {
			wait.Reset(linger)
		} else {
			lingering = nil
		}
		for slots != nil || lingering != nil {
			if len(batch) >= size {
				wait.Stop() // a timer's channel holds no stale tick after Stop
				lingering = nil
				if slots == nil {
					break
				}
			}
			var in <-chan *sarama.ConsumerMessage
			if len(batch) < size {
				in = pl.in
			}
			select {
			case m := <-in:
				batch = append(batch, m)
			case slots <- struct{}{}:
				slots = nil
			case <-lingering:
				lingering = nil
			case <-pl.quit:
				if slots == nil {
					<-pl.p.slots
				}
				return
			}
		}
	topUp:
		for len(batch) < size {
			select {
			case m := <-pl.in:
				batch = append(batch, m)
			default:
				break topUp
			}
		}
		f := &flight{records: batch, done: make(chan struct{})}
		pl.wg.Add(1)
		go func() {
			defer pl.wg.Done()
			defer close(f.done)
			f.err = pl.p.persistBatch(pl.ctx, pl.sess.Context(), f.records, func() { <-pl.p.slots })
		}()
		pl.flights <- f // mark reads until flights is closed
	}
}

// mark marks each batch's offsets once MongoDB has it, in intake order.
// After a batch that failed (the session ended while it was retried)
// nothing more is marked: its records are consumed again by the
// partition's next owner.
func (pl *pipeline) mark() {
	defer close(pl.marked)
	failed := false
	next := map[int32]int64{}
	for f := range pl.flights {
		<-f.done
		if failed || f.err != nil {
			failed = true
			continue
		}
		clear(next)
		for _, m := range f.records {
			next[m.Partition] = max(next[m.Partition], m.Offset+1)
		}
		for part, off := range next {
			pl.sess.MarkOffset(f.records[0].Topic, part, off, "")
		}
		select {
		case pl.dirty <- struct{}{}:
		default:
		}
	}
}

// flushCommits commits marked offsets every commitEvery, and once more
// when marking is over. A commit is a synchronous round trip that a broker
// may fsync, so it never holds up marking, let alone inserting.
func (pl *pipeline) flushCommits() {
	tick := time.NewTicker(commitEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			select {
			case <-pl.dirty:
				pl.sess.Commit()
			default:
			}
		case <-pl.marked:
			pl.sess.Commit()
			return
		}
	}
}
