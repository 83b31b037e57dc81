package actors

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startDispatcher runs a dispatcher until the test ends.
func startDispatcher(tb testing.TB) (*workerDispatcher, context.CancelFunc) {
	tb.Helper()
	d := newWorkerDispatcher(mailboxQueue)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return d, cancel
}

// waitClosed fails the test unless ch closes within 5 s.
func waitClosed(tb testing.TB, ch <-chan struct{}, failure string) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		tb.Fatal(failure)
	}
}

// queuedRuns is the number of runs waiting in d's queue.
func queuedRuns(d *workerDispatcher) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

func TestDispatcherRunsPastBlockedWorkers(t *testing.T) {
	d, _ := startDispatcher(t)
	release := make(chan struct{})
	var blocked sync.WaitGroup
	// More blocked runs than workers: the rest wait in the queue.
	for range mailboxWorkers + 10 {
		blocked.Add(1)
		d.Schedule(func() { defer blocked.Done(); <-release })
	}
	ran := make(chan struct{})
	d.Schedule(func() { close(ran) })
	waitClosed(t, ran, "a ready mailbox waited behind workers blocked on a store")
	close(release)
	blocked.Wait()
}

func TestDispatcherRunsEveryScheduledMailboxAcrossStop(t *testing.T) {
	d, cancel := startDispatcher(t)
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		if i == n/2 {
			cancel()
		}
		d.Schedule(wg.Done)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	waitClosed(t, finished, "mailbox runs scheduled around the stop never ran")
}

func TestDispatcherQueueFullStartsGoroutines(t *testing.T) {
	d := newWorkerDispatcher(2) // no workers: the queue fills
	d.watching.Store(true)      // and no helper drains it
	var queued atomic.Int32
	for range 2 {
		d.Schedule(func() { queued.Add(1) })
	}
	ran := make(chan struct{})
	d.Schedule(func() { close(ran) })
	waitClosed(t, ran, "a run past the full queue did not get its own goroutine")
	waiting := queuedRuns(d)
	if n := queued.Load(); n != 0 || waiting != 2 {
		t.Fatalf("queued runs: %d ran, %d waiting; want 0 and 2", n, waiting)
	}
}

func TestDispatcherKeepsOrderAndGrowsItsQueue(t *testing.T) {
	d := newWorkerDispatcher(1000)
	d.watching.Store(true) // nothing runs until the workers start
	var got []int
	for i := range 1000 {
		d.Schedule(func() { got = append(got, i) }) // one worker at a time below
	}
	waiting := queuedRuns(d)
	if waiting != 1000 {
		t.Fatalf("%d runs waiting, want 1000", waiting)
	}
	d.help()
	for i, v := range got {
		if v != i {
			t.Fatalf("run %d came %dth", v, i)
		}
	}
	if len(got) != 1000 {
		t.Fatalf("%d runs, want 1000", len(got))
	}
}
