package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// PersisterConfig configures the persister.
type PersisterConfig struct {
	Kafka            KafkaConfig
	Group            string
	MessageTopic     string
	PersistenceTopic string
	// BatchSize bounds the documents of one bulk insert.
	BatchSize int
	// Concurrency bounds the bulk inserts in flight at once.
	Concurrency int
	// Linger is how long a batch may wait for more records after its
	// first before it takes an insert slot; 0: a batch is what has arrived
	// when a slot is free.
	Linger    time.Duration
	StatusTTL time.Duration
	// SessionTimeout is the consumer group session timeout.
	SessionTimeout time.Duration
	// Local, if set, is handed each batch's persistence events as soon as
	// MongoDB has the batch: the node's own Tracker confirms its senders'
	// messages without waiting for the events to come back through Kafka.
	// The events are published on PersistenceTopic all the same, for the
	// other nodes.
	Local Confirmer
}

// Confirmer takes persistence events in process.
type Confirmer interface {
	Confirm(events []PersistenceEvent)
}

// PersisterMetrics is what the persister reports.
type PersisterMetrics interface {
	Persisted(n int, latency time.Duration)
	PersistenceError()
	DuplicatesSkipped(n int)
}

// Persister consumes chat messages and writes them to MongoDB in unordered
// bulk inserts, idempotent on (tenant_id, message_id).
//
// Batches adapt to the store: the records of every claimed partition go
// into one bounded intake, and a batch is whatever has arrived (up to
// BatchSize) when an insert slot is free and Linger has passed since its
// first record, so batches grow while the store is busy, and at low rates
// hold what Linger gathers. Up to Concurrency
// inserts run at once. As soon as MongoDB has a batch its persistence
// events go out; offsets are marked in intake order and only for batches
// MongoDB has, and committed off the insert path.
type Persister struct {
	cfg      PersisterConfig
	group    sarama.ConsumerGroup
	messages *mongo.Collection
	convs    *mongo.Collection
	rdb      redis.UniversalClient
	producer *Producer
	logger   *slog.Logger
	metrics  PersisterMetrics

	// slots bounds the writes to MongoDB in flight: the inserts of every
	// session and the touches between them. A store with one writer at a
	// time (SQLite under FerretDB) makes concurrent writers sleep in its
	// lock's back-off, so a touch round that does not queue for a slot
	// stalls the inserts for longer than it takes.
	slots chan struct{}

	touchMu sync.Mutex
	touch   map[string]time.Time // conversation _id → newest persisted message
}

// NewPersister joins the persister's consumer group.
func NewPersister(cfg PersisterConfig, m *Mongo, rdb redis.UniversalClient, producer *Producer, logger *slog.Logger, metrics PersisterMetrics) (*Persister, error) {
	cfg.BatchSize = max(cfg.BatchSize, 1)
	cfg.Concurrency = max(cfg.Concurrency, 1)
	c := baseSaramaConfig(cfg.Kafka.ClientID + "-persister")
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Return.Errors = false
	if cfg.SessionTimeout > 0 {
		c.Consumer.Group.Session.Timeout = cfg.SessionTimeout
		c.Consumer.Group.Heartbeat.Interval = cfg.SessionTimeout / 5
	}
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	c.Consumer.Fetch.Default = 4 << 20
	c.ChannelBufferSize = cfg.BatchSize
	group, err := sarama.NewConsumerGroup(cfg.Kafka.Brokers, cfg.Group, c)
	if err != nil {
		return nil, fmt.Errorf("persister consumer group: %w", err)
	}
	return &Persister{
		cfg: cfg, group: group,
		messages: m.Collection(CollMessages), convs: m.Collection(CollConversations),
		rdb: rdb, producer: producer, logger: logger, metrics: metrics,
		slots: make(chan struct{}, cfg.Concurrency),
	}, nil
}

// touchEvery is how often conversations' last_message_at is advanced: off
// the confirmation path, one $max per conversation per interval however
// many messages it had.
const touchEvery = 500 * time.Millisecond

// touchShare and touchEveryMax stretch the touch interval while touches
// are slow: the wait is touchShare times the store time of the last round,
// at most touchEveryMax. On a store that needs seconds for a round (a
// single writer, as SQLite under FerretDB, with hundreds of busy rooms:
// 10 s for 500 conversations beside a saturated load), a short cap would
// give touches a third of its time and the message inserts fall behind;
// last_message_at lagging a minute is the lesser harm.
const (
	touchShare    = 20
	touchEveryMax = time.Minute
)

// touchPace is how many times as long as a touch statement held the store
// its round rests before the next: a round of 500 busy conversations on
// FerretDB/SQLite holds the store for about 27 s, and taken in one piece
// it stopped the inserts for as long (message:persisted p99 21–23 s at
// 1,000 msgs/s); paced, the inserts keep two thirds of the store's time.
const touchPace = 2

// finalTouchTimeout bounds a stopping persister's last touch round; what
// it leaves is parked (persister_park.go).
const finalTouchTimeout = 5 * time.Second

// maxTouchPending bounds the conversations waiting for a touch.
const maxTouchPending = 100000

// commitEvery is how often marked offsets are committed; a session's last
// marks are committed when it ends. After a crash, what was stored since
// the last commit is consumed again, and deduplicated.
const commitEvery = time.Second

// prepareChunk is how many documents prepare encodes between steps aside.
const prepareChunk = 32

// insertAttemptTimeout bounds one bulk insert attempt.
const insertAttemptTimeout = 30 * time.Second

// Run consumes until ctx ends, then leaves the group.
func (p *Persister) Run(ctx context.Context) error {
	defer p.group.Close()
	touched := make(chan struct{})
	go func() { defer close(touched); p.touchLoop(ctx) }()
	defer func() { <-touched }()
	h := &persistHandler{p: p, ctx: ctx}
	for ctx.Err() == nil {
		if err := p.group.Consume(ctx, []string{p.cfg.MessageTopic}, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return nil
			}
			p.logger.Warn("persister consume", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

// persistBatch writes one batch to MongoDB, retrying while MongoDB is
// unreachable until stop ends: a batch is never skipped, because Kafka
// holds the only copy of an accepted message until MongoDB has it. Each
// attempt runs under ctx, so an attempt under way when stop ends (a
// rebalance) still finishes. inserted is called once MongoDB is done with
// the batch, whatever the outcome, before the batch's persistence events
// go out and its statuses are recorded.
func (p *Persister) persistBatch(ctx, stop context.Context, batch []*sarama.ConsumerMessage, inserted func()) error {
	start := time.Now()
	docs, events := p.prepare(batch)
	if len(docs) == 0 {
		inserted()
		return nil
	}
	dups, err := p.insert(ctx, stop, docs, events)
	inserted()
	if err != nil {
		return err
	}
	if p.cfg.Local != nil {
		p.cfg.Local.Confirm(events)
	}
	p.publish(events)
	p.metrics.Persisted(len(docs)-dups, time.Since(start))
	if dups > 0 {
		p.metrics.DuplicatesSkipped(dups)
	}
	p.noteTouches(ctx, events)
	p.recordStatuses(ctx, events)
	return nil
}

// prepare turns records into encoded documents and their persistence
// events; an undecodable record is counted, logged and skipped. It steps
// aside every prepareChunk documents: encoding a batch of 500 is a burst
// of 10–20 ms of CPU, and on a node with one core every delivery would
// wait for it.
func (p *Persister) prepare(batch []*sarama.ConsumerMessage) ([]bson.Raw, []PersistenceEvent) {
	docs := make([]bson.Raw, 0, len(batch))
	events := make([]PersistenceEvent, 0, len(batch))
	now := time.Now().UTC()
	for _, m := range batch {
		msg, err := DecodeMessage(m.Value)
		if err != nil {
			p.metrics.PersistenceError()
			p.logger.Error("persister: undecodable record skipped", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		created, err := time.Parse(TimeFormat, msg.CreatedAt)
		if err != nil {
			created = m.Timestamp
		}
		doc, err := messageDocument(msg, created, now)
		if err != nil {
			p.metrics.PersistenceError()
			p.logger.Error("persister: unencodable record skipped", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		docs = append(docs, doc)
		if len(docs)%prepareChunk == 0 {
			runtime.Gosched()
		}
		events = append(events, PersistenceEvent{
			MessageID: msg.MessageID, TenantID: msg.TenantID, ConversationID: msg.ConversationID,
			SenderID: msg.SenderID, Seq: msg.Seq, Status: StatusPersisted, PersistedAt: now,
			Partition: m.Partition, Offset: m.Offset,
		})
	}
	return docs, events
}

// insert bulk-inserts docs unordered; duplicates count as persisted, other
// write errors fail their message. Connection errors are retried until
// stop ends; each attempt runs under ctx.
func (p *Persister) insert(ctx, stop context.Context, docs []bson.Raw, events []PersistenceEvent) (dups int, err error) {
	err = retry(ctx, stop, p.logger, "insert messages", func() error {
		dups = 0
		attempt, cancel := context.WithTimeout(ctx, insertAttemptTimeout)
		defer cancel()
		failed, err := insertDocs(attempt, p.messages, docs, insertCommandBytes)
		if err != nil {
			return err
		}
		for _, we := range failed {
			if duplicateKey(we.Code) {
				events[we.Index].Duplicate = true
				dups++
				continue
			}
			p.metrics.PersistenceError()
			events[we.Index].Status = StatusFailed
			events[we.Index].ErrorCode = "internal"
			events[we.Index].Error = we.Message
		}
		return nil
	})
	return dups, err
}

// recordStatuses stores each message's outcome in Redis, so a resend of a
// stored message is confirmed at once. Best effort: the event still goes out.
func (p *Persister) recordStatuses(ctx context.Context, events []PersistenceEvent) {
	pipe := p.rdb.Pipeline()
	for _, e := range events {
		if e.Status == StatusPersisted {
			pipe.Set(ctx, StatusKey(e.TenantID, e.MessageID), encodeStatus('d', e.Seq, e.ConversationID, e.PersistedAt.Format(TimeFormat)), p.cfg.StatusTTL)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		p.logger.Warn("persister: message status not recorded", "err", err)
	}
}

// publish sends the batch's persistence events; a lost event is covered by
// the sender's confirmation timeout and resend, which the dedup answers.
func (p *Persister) publish(events []PersistenceEvent) {
	b, err := json.Marshal(persistenceBatch{Events: events})
	if err != nil {
		return
	}
	if err := p.producer.Send(&Record{Topic: p.cfg.PersistenceTopic, Value: b}); err != nil {
		p.logger.Warn("persister: persistence events not published", "err", err)
	}
}

// retry runs fn until it succeeds, backing off up to 2 s, while stop
// lasts. fn's attempts run under ctx: once it ends (the node stops), no
// attempt can succeed, so retry gives up at once and quietly; the
// records stay in Kafka for the next start.
func retry(ctx, stop context.Context, logger *slog.Logger, what string, fn func() error) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		}
		if attempt == 1 || attempt%20 == 0 {
			logger.Warn("persister: retrying", "what", what, "attempt", attempt, "err", err)
		}
		select {
		case <-stop.Done():
			return fmt.Errorf("%s: %w (last error: %w)", what, stop.Err(), err)
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
