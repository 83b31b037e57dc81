package persistence

import (
	"context"
	"slices"
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

// resends records what a Tracker sends again.
type resends struct{ recs []*Record }

func (r *resends) Send(rec *Record) error { r.recs = append(r.recs, rec); return nil }

// TestTrackerResendsWhatTimedOutAndForgetsWhatIsDone: messages not
// confirmed within Timeout are sent again (without the room's Done), a
// confirmed one is not, and the deadline queue keeps only what still
// waits, with no slot left pointing at a finished entry.
func TestTrackerResendsWhatTimedOutAndForgetsWhatIsDone(t *testing.T) {
	tr, _ := newTestTracker(t, 10)
	tr.cfg.Timeout, tr.cfg.MaxAttempts = 10*time.Second, 5
	out := &resends{}
	tr.producer = out
	nop := func(Outcome) {}
	roomDone := 0
	for _, id := range []string{"a", "b", "c"} {
		rec := &Record{Topic: "messages", Value: []byte(id), Done: func(error) { roomDone++ }}
		if err := tr.Track("acme", id, rec, nop); err != nil {
			t.Fatal(err)
		}
		tr.Accepted("acme", id)
	}
	start := time.Now()
	tr.expire(context.Background(), start.Add(30*time.Second))
	if len(out.recs) != 3 {
		t.Fatalf("resent %d after the first timeout, want 3", len(out.recs))
	}
	for _, r := range out.recs {
		if r.Done != nil {
			r.Done(nil)
		}
	}
	if roomDone != 0 {
		t.Fatalf("a resend called the room's Done %d times", roomDone)
	}
	tr.Confirm([]PersistenceEvent{{TenantID: "acme", MessageID: "a", Status: StatusPersisted, Seq: 1}})
	// Nothing is due: nothing is sent again, and the confirmed head leaves.
	tr.expire(context.Background(), start.Add(200*time.Millisecond))
	if len(out.recs) != 3 || len(tr.queue) != 2 {
		t.Fatalf("before the deadline: %d resends, queue %d; want 3 and 2", len(out.recs), len(tr.queue))
	}
	tr.expire(context.Background(), start.Add(2*time.Minute))
	if len(out.recs) != 5 {
		t.Fatalf("resent %d in all after the second timeout, want 5 (a was confirmed)", len(out.recs))
	}
	if len(tr.queue) != 2 {
		t.Fatalf("queue holds %d entries, want the 2 still waiting", len(tr.queue))
	}
	for i, e := range tr.queue[len(tr.queue):cap(tr.queue)] {
		if e != nil {
			t.Fatalf("queue slot %d past its end still points at %v", len(tr.queue)+i, e.key)
		}
	}
}

// TestTrackerDoesNotResendWhatThePersistersHaveNotReached: a message whose
// record is past the highest offset of its partition that persistence
// events named (or in a partition none named yet) waits another Timeout
// without a resend and without counting an attempt, until BehindWait has
// passed; one the persisters went past without confirming it is sent
// again, and fails after MaxAttempts as before, unless they have not
// reached where its copy went.
func TestTrackerDoesNotResendWhatThePersistersHaveNotReached(t *testing.T) {
	tr, _ := newTestTracker(t, 10)
	tr.cfg.Timeout, tr.cfg.MaxAttempts, tr.cfg.BehindWait = 10*time.Second, 2, time.Minute
	out := &resends{}
	tr.producer = out
	outcomes := map[string][]Outcome{}
	for _, m := range []struct {
		id        string
		partition int32
		offset    int64
	}{{"a", 0, 10}, {"b", 0, 11}, {"c", 1, 5}} {
		rec := &Record{Topic: "messages", Value: []byte(m.id), Partition: m.partition, Offset: m.offset, placed: true}
		if err := tr.Track("acme", m.id, rec, func(o Outcome) { outcomes[m.id] = append(outcomes[m.id], o) }); err != nil {
			t.Fatal(err)
		}
		tr.Accepted("acme", m.id)
	}
	start := time.Now()
	resent := func() (ids []string) {
		for _, r := range out.recs {
			ids = append(ids, string(r.Value))
		}
		return ids
	}
	// Persisters got to offset 10 of partition 0 (another message's event).
	tr.Confirm([]PersistenceEvent{{TenantID: "acme", MessageID: "other", Status: StatusPersisted, Partition: 0, Offset: 10}})
	tr.expire(context.Background(), start.Add(15*time.Second))
	if got := resent(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after the first timeout resent %v, want [a]: b and c are not reached", got)
	}
	tr.Confirm([]PersistenceEvent{{TenantID: "acme", MessageID: "other2", Status: StatusPersisted, Partition: 1, Offset: 7}})
	tr.expire(context.Background(), start.Add(30*time.Second))
	if got := resent(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after the second timeout resent %v, want [a c]", got)
	}
	if len(outcomes["a"]) != 1 || outcomes["a"][0].Status != StatusFailed {
		t.Fatalf("a after its %d attempts: %v, want one failure", tr.cfg.MaxAttempts, outcomes["a"])
	}
	if len(outcomes["b"]) != 0 || len(outcomes["c"]) != 0 {
		t.Fatalf("b or c told before their attempts ran out: %v", outcomes)
	}
	// c's copy went to offset 9 of partition 1, past what the persisters
	// reached (7): c waits for it instead of failing at its next timeout.
	cp := out.recs[1]
	cp.Partition, cp.Offset, cp.placed = 1, 9, true
	cp.Done(nil)
	tr.expire(context.Background(), start.Add(45*time.Second))
	if got := resent(); !slices.Equal(got, []string{"a", "c"}) || len(outcomes["c"]) != 0 {
		t.Fatalf("with c's copy not reached: resent %v, c told %v; want [a c] and nothing", got, outcomes["c"])
	}
	// Past BehindWait b counts attempts even though it is not reached.
	tr.expire(context.Background(), start.Add(75*time.Second))
	if got := resent(); !slices.Equal(got, []string{"a", "c", "b"}) {
		t.Fatalf("past BehindWait resent %v, want [a c b]", got)
	}
	tr.Confirm([]PersistenceEvent{{TenantID: "acme", MessageID: "b", Status: StatusPersisted, Seq: 2, Partition: 0, Offset: 11}})
	if len(outcomes["b"]) != 1 || outcomes["b"][0].Status != StatusPersisted {
		t.Fatalf("b: %v, want persisted", outcomes["b"])
	}
}
