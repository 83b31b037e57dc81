package persistence

import (
	"testing"
	"time"
)

// confirmations counts what a Tracker reports.
type confirmations struct{ byStatus map[string]int }

func (c *confirmations) Confirmation(status string) { c.byStatus[status]++ }
func (c *confirmations) ConfirmationTimeout()       {}

// newTestTracker is a Tracker without its Kafka consumer: Track, Accepted,
// Confirm and Forget need none.
func newTestTracker(tb testing.TB, maxPending int) (*Tracker, *confirmations) {
	tb.Helper()
	m := &confirmations{byStatus: map[string]int{}}
	return &Tracker{
		cfg:     TrackerConfig{Timeout: time.Minute, MaxAttempts: 3, MaxPending: maxPending},
		metrics: m,
		pending: map[trackKey]*tracked{},
		ready:   make(chan struct{}),
	}, m
}

// TestTrackerTellsEveryWaiterOnce: a message sent again while its first
// send awaits confirmation gets a second waiter; the outcome reaches both
// once, only after Kafka's acknowledgement, and a message of another
// tenant with the same id is apart from it.
func TestTrackerTellsEveryWaiterOnce(t *testing.T) {
	tr, m := newTestTracker(t, 10)
	got := map[string][]Outcome{}
	waiter := func(name string) func(Outcome) {
		return func(o Outcome) { got[name] = append(got[name], o) }
	}
	rec := &Record{Topic: "messages", Value: []byte(`{}`)}
	for _, w := range []struct{ tenant, name string }{{"acme", "first"}, {"acme", "again"}, {"other", "other"}} {
		if err := tr.Track(w.tenant, "m-1", rec, waiter(w.name)); err != nil {
			t.Fatalf("Track %s: %v", w.name, err)
		}
	}
	if n := tr.Pending(); n != 2 {
		t.Fatalf("pending %d, want 2 (one per tenant)", n)
	}
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tr.Confirm([]PersistenceEvent{{TenantID: "acme", MessageID: "m-1", Status: StatusPersisted, Seq: 7, PersistedAt: at}})
	if len(got) != 0 {
		t.Fatalf("told before Kafka acknowledged the message: %v", got)
	}
	tr.Accepted("acme", "m-1")
	for _, name := range []string{"first", "again"} {
		if len(got[name]) != 1 || got[name][0].Seq != 7 || got[name][0].Status != StatusPersisted || !got[name][0].PersistedAt.Equal(at) {
			t.Fatalf("%s got %+v, want one persisted outcome with seq 7", name, got[name])
		}
	}
	if len(got["other"]) != 0 {
		t.Fatalf("the other tenant's message was told %+v", got["other"])
	}
	// Confirmed already: a late event (through Kafka after the in-process
	// one) is applied once.
	tr.Confirm([]PersistenceEvent{{TenantID: "acme", MessageID: "m-1", Status: StatusPersisted, Seq: 7, PersistedAt: at}})
	tr.Accepted("acme", "m-1")
	if len(got["first"]) != 1 || len(got["again"]) != 1 || m.byStatus[StatusPersisted] != 1 {
		t.Fatalf("applied twice: %v, metrics %v", got, m.byStatus)
	}
	tr.Forget("other", "m-1")
	if n := tr.Pending(); n != 0 {
		t.Fatalf("pending %d after confirming and forgetting, want 0", n)
	}
}

// TestTrackerRefusesBeyondMaxPending: the bound counts messages, not
// waiters, and a confirmed message frees its place.
func TestTrackerRefusesBeyondMaxPending(t *testing.T) {
	tr, _ := newTestTracker(t, 2)
	rec := &Record{Topic: "messages"}
	nop := func(Outcome) {}
	for _, id := range []string{"a", "b"} {
		if err := tr.Track("acme", id, rec, nop); err != nil {
			t.Fatalf("Track %s: %v", id, err)
		}
	}
	if err := tr.Track("acme", "a", rec, nop); err != nil {
		t.Fatalf("another waiter of a tracked message refused: %v", err)
	}
	if err := tr.Track("acme", "c", rec, nop); err != ErrTooManyPending {
		t.Fatalf("third message: %v, want ErrTooManyPending", err)
	}
	tr.Accepted("acme", "a")
	tr.Confirm([]PersistenceEvent{{TenantID: "acme", MessageID: "a", Status: StatusPersisted, Seq: 1}})
	if err := tr.Track("acme", "c", rec, nop); err != nil {
		t.Fatalf("third message after one was confirmed: %v", err)
	}
}
