package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Outcome is what a sender learns about its message.
type Outcome struct {
	Status      string // StatusPersisted or StatusFailed
	Seq         int64
	PersistedAt time.Time
	Code        string
	Message     string
}

// TrackerConfig configures delivery confirmation.
type TrackerConfig struct {
	Kafka            KafkaConfig
	PersistenceTopic string
	// Timeout is how long to wait for a confirmation before sending again.
	Timeout time.Duration
	// MaxAttempts bounds sends of one message, the first included.
	MaxAttempts int
	// MaxPending bounds messages awaiting confirmation.
	MaxPending int
	// BehindWait is how long a message whose record the persisters have
	// not reached yet (its offset is past the highest of its partition
	// that a persistence event named) waits without a resend: sending it
	// again would only add to their backlog. Past it, or with 0, every
	// Timeout counts an attempt as before.
	BehindWait time.Duration
}

// TrackerMetrics is what the tracker reports.
type TrackerMetrics interface {
	Confirmation(status string)
	ConfirmationTimeout()
}

// Resender sends a record again.
type Resender interface {
	Send(rec *Record) error
}

// Tracker waits for each accepted message's persistence event and tells
// its sender. No confirmation within Timeout: the record is sent again (the
// persister dedups), up to MaxAttempts sends, then the sender is told the
// message failed. It consumes every partition of the persistence topic, so
// it sees events whatever node persisted the message.
type Tracker struct {
	cfg      TrackerConfig
	producer Resender
	seq      *Sequencer
	logger   *slog.Logger
	metrics  TrackerMetrics
	consumer sarama.Consumer

	mu      sync.Mutex
	pending map[trackKey]*tracked
	// reached is, per partition of the messages topic, the highest offset
	// a persistence event named: how far the persisters got.
	reached map[int32]int64
	ready   chan struct{}
	// queue holds tracked entries in deadline order: every deadline is
	// "now + Timeout", so appending keeps it sorted.
	queue []*tracked
}

// trackKey names a tracked message. A pair rather than one joined string:
// every message is looked up three times (tracked, accepted, confirmed),
// and a joined key would be a string built for each.
type trackKey struct{ tenant, id string }

type tracked struct {
	key trackKey
	rec *Record
	// notify is the first waiter; more are resends from other connections,
	// rare enough that most messages need no slice.
	notify   func(Outcome)
	more     []func(Outcome)
	attempts int
	deadline time.Time
	// since is when Kafka acknowledged the record, and partition and
	// offset where it put it (when placed).
	since     time.Time
	partition int32
	offset    int64
	placed    bool
	accepted  bool
	outcome   *Outcome
	done      bool
}

// NewTracker connects the persistence-event consumer. Events are read from
// the newest offset: only messages accepted from now on matter.
func NewTracker(cfg TrackerConfig, producer Resender, seq *Sequencer, logger *slog.Logger, metrics TrackerMetrics) (*Tracker, error) {
	c := baseSaramaConfig(cfg.Kafka.ClientID + "-confirm")
	c.Consumer.Return.Errors = false
	consumer, err := sarama.NewConsumer(cfg.Kafka.Brokers, c)
	if err != nil {
		return nil, fmt.Errorf("persistence event consumer: %w", err)
	}
	return &Tracker{cfg: cfg, producer: producer, seq: seq, logger: logger, metrics: metrics, consumer: consumer, pending: make(map[trackKey]*tracked), ready: make(chan struct{})}, nil
}

// Track registers a message sent as rec; notify is called once with its
// outcome. A message tracked already gets another waiter.
func (t *Tracker) Track(tenant, messageID string, rec *Record, notify func(Outcome)) error {
	key := trackKey{tenant, messageID}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.pending[key]; ok {
		e.more = append(e.more, notify)
		return nil
	}
	if len(t.pending) >= t.cfg.MaxPending {
		return ErrTooManyPending
	}
	t.pending[key] = &tracked{key: key, rec: rec, notify: notify, attempts: 1}
	return nil
}

// Accepted starts the confirmation clock: Kafka has the record and the
// sender was told message:accepted, so message:persisted may follow.
func (t *Tracker) Accepted(tenant, messageID string) {
	t.mu.Lock()
	e, ok := t.pending[trackKey{tenant, messageID}]
	if !ok || e.accepted {
		t.mu.Unlock()
		return
	}
	e.accepted = true
	if e.outcome != nil {
		t.finishLocked(e)
		t.mu.Unlock()
		t.deliver(e)
		return
	}
	e.since = time.Now()
	e.deadline = e.since.Add(t.cfg.Timeout)
	e.partition, e.offset, e.placed = e.rec.Partition, e.rec.Offset, e.rec.placed
	t.queue = append(t.queue, e)
	t.mu.Unlock()
}

// Forget drops a message that never reached Kafka; its sender is told by
// the caller.
func (t *Tracker) Forget(tenant, messageID string) {
	t.mu.Lock()
	if e, ok := t.pending[trackKey{tenant, messageID}]; ok {
		e.done = true
		delete(t.pending, e.key)
	}
	t.mu.Unlock()
}

// Pending returns the number of messages awaiting confirmation.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

func (t *Tracker) finishLocked(e *tracked) {
	e.done = true
	delete(t.pending, e.key)
}

func (t *Tracker) deliver(e *tracked) {
	t.metrics.Confirmation(e.outcome.Status)
	e.notify(*e.outcome)
	for _, n := range e.more {
		n(*e.outcome)
	}
}

// Ready is closed once Run reads every partition of the persistence topic.
func (t *Tracker) Ready() <-chan struct{} { return t.ready }

// Run consumes persistence events and drives timeouts until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	defer t.consumer.Close()
	parts, err := t.consumer.Partitions(t.cfg.PersistenceTopic)
	if err != nil {
		return fmt.Errorf("persistence topic partitions: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range parts {
		pc, err := t.consumer.ConsumePartition(t.cfg.PersistenceTopic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("consume %s/%d: %w", t.cfg.PersistenceTopic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case <-ctx.Done():
					return
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					t.handle(m.Value)
				}
			}
		}()
	}
	close(t.ready)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			t.expire(ctx, now)
		}
	}
}

func (t *Tracker) handle(value []byte) {
	var b persistenceBatch
	if err := json.Unmarshal(value, &b); err != nil {
		t.logger.Warn("undecodable persistence event", "err", err)
		return
	}
	t.Confirm(b.Events)
}

// Confirm applies persistence events: each message of this node awaiting
// one gets its outcome (its sender is told once Kafka has acknowledged it,
// if that has not happened yet). Events of messages not awaited here, or
// confirmed already, are ignored, so an event that arrives both in process
// and through Kafka is applied once.
func (t *Tracker) Confirm(events []PersistenceEvent) {
	var ready []*tracked
	t.mu.Lock()
	for i := range events {
		ev := &events[i]
		if r, ok := t.reached[ev.Partition]; !ok || ev.Offset > r {
			if t.reached == nil {
				t.reached = map[int32]int64{}
			}
			t.reached[ev.Partition] = ev.Offset
		}
		e, ok := t.pending[trackKey{ev.TenantID, ev.MessageID}]
		if !ok {
			continue
		}
		o := &Outcome{Status: ev.Status, Seq: ev.Seq, PersistedAt: ev.PersistedAt, Code: ev.ErrorCode, Message: ev.Error}
		e.outcome = o
		if e.accepted {
			t.finishLocked(e)
			ready = append(ready, e)
		}
	}
	t.mu.Unlock()
	for _, e := range ready {
		t.deliver(e)
	}
}

// expire resends or fails every message whose deadline passed, but for
// those the persisters have not reached yet: they wait another Timeout.
func (t *Tracker) expire(ctx context.Context, now time.Time) {
	var again, resend, failed []*tracked
	t.mu.Lock()
	i := 0
	for ; i < len(t.queue); i++ {
		e := t.queue[i]
		if e.done {
			continue
		}
		if e.deadline.After(now) {
			break
		}
		e.deadline = now.Add(t.cfg.Timeout)
		if t.behindLocked(e, now) {
			again = append(again, e)
			continue
		}
		t.metrics.ConfirmationTimeout()
		if e.attempts >= t.cfg.MaxAttempts {
			e.outcome = &Outcome{Status: StatusFailed, Seq: 0, Code: "unavailable",
				Message: fmt.Sprintf("not confirmed as persisted after %d attempts", e.attempts)}
			t.finishLocked(e)
			failed = append(failed, e)
			continue
		}
		e.attempts++
		again = append(again, e)
		resend = append(resend, e)
	}
	// Most ticks find nothing due: the queue (one entry per message
	// awaiting confirmation, 150,000 in a backlog) moves only when its
	// head went, and the slots it leaves are cleared, not kept pointing
	// at finished entries.
	if i > 0 {
		t.queue = slices.Delete(t.queue, 0, i)
	}
	t.queue = append(t.queue, again...)
	t.mu.Unlock()
	for _, e := range resend {
		r := *e.rec
		// Not the room's Done: the tracker only learns where the copy
		// went, so that it waits for the persisters to reach that.
		r.Done = func(err error) {
			if err == nil {
				t.mu.Lock()
				e.partition, e.offset, e.placed = r.Partition, r.Offset, r.placed
				t.mu.Unlock()
			}
		}
		if err := t.producer.Send(&r); err != nil {
			t.logger.Warn("confirmation resend failed", "tenant", e.key.tenant, "message_id", e.key.id, "err", err)
		}
	}
	for _, e := range failed {
		if m, err := DecodeMessage(e.rec.Value); err == nil {
			e.outcome.Seq = m.Seq
			if err := t.seq.MarkFailed(ctx, m.TenantID, m.MessageID, m.ConversationID, m.Seq); err != nil {
				t.logger.Warn("message status not recorded", "err", err)
			}
		}
		t.deliver(e)
	}
}

// behindLocked tells whether e's record is past what the persisters
// reached (or they reached nothing of its partition yet) and e has waited
// less than BehindWait: a resend would queue behind the same backlog.
func (t *Tracker) behindLocked(e *tracked, now time.Time) bool {
	if !e.placed || now.Sub(e.since) >= t.cfg.BehindWait {
		return false
	}
	r, ok := t.reached[e.partition]
	return !ok || r < e.offset
}
