package actors

import (
	"context"
	"sync"
)

// Bounds of the engine's mailbox workers.
const (
	mailboxWorkers    = 64
	mailboxThroughput = 300 // messages an actor handles before it yields, as protoactor's default
)

// workerDispatcher runs actor mailboxes on long-lived workers: a mailbox
// with new messages goes to a worker that is waiting, else to a new
// goroutine, as protoactor's default dispatcher does for every one. A
// worker's stack has grown to what an actor's turn needs already, where a
// new goroutine grows (copies) its stack again on every burst of messages,
// that is, about once per message at chat rates.
type workerDispatcher struct {
	work chan func() // unbuffered: a send succeeds only to a waiting worker
}

func newWorkerDispatcher() *workerDispatcher {
	return &workerDispatcher{work: make(chan func())}
}

// Schedule implements actor.Dispatcher; it never blocks.
func (d *workerDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go fn()
	}
}

// Throughput implements actor.Dispatcher.
func (d *workerDispatcher) Throughput() int { return mailboxThroughput }

// run runs the workers until ctx ends; each finishes the mailbox it runs.
func (d *workerDispatcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range mailboxWorkers {
		wg.Go(func() {
			for {
				select {
				case fn := <-d.work:
					fn()
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
}
