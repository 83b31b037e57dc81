package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// KafkaConfig configures caasd's Kafka clients.
type KafkaConfig struct {
	Brokers  []string
	ClientID string
	// Partitions is the partition count of topics caasd creates.
	Partitions int
	// Linger is how long the producer holds a record for others to join
	// its produce request; 0 sends whenever no request is in flight. A
	// request costs more than its own round trip: the records it carries
	// reach the persister in one fetch and one insert, and their
	// confirmations in one request and one fetch, so at chat rates,
	// where a request a millisecond carries one or two records, the
	// linger sets how many rounds the whole chain makes.
	Linger time.Duration
}

// baseSaramaConfig is shared by every client: Kafka 2.8 protocol, which
// real brokers and the embedded one both speak.
func baseSaramaConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_8_0_0
	c.ClientID = clientID
	c.Net.DialTimeout = 5 * time.Second
	c.Metadata.Retry.Max = 10
	c.Metadata.Retry.Backoff = 200 * time.Millisecond
	c.MetricRegistry = quietRegistry{}
	return c
}

// EnsureTopics creates topics that do not exist yet.
func EnsureTopics(cfg KafkaConfig, topics ...string) error {
	admin, err := sarama.NewClusterAdmin(cfg.Brokers, baseSaramaConfig(cfg.ClientID+"-admin"))
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("kafka list topics: %w", err)
	}
	for _, t := range topics {
		if _, ok := existing[t]; ok {
			continue
		}
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: int32(cfg.Partitions), ReplicationFactor: 1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("kafka create topic %s: %w", t, err)
		}
	}
	return nil
}

// Record is one Kafka record to produce. Done is called once with the
// outcome, from the producer's goroutine; it must not block.
type Record struct {
	Topic   string
	Key     string
	Value   []byte
	Headers []sarama.RecordHeader
	Done    func(err error)

	// Partition and Offset are where Kafka stored the record, set before
	// Done(nil) (placed then true); a record sent again gets the place of
	// its last send.
	Partition int32
	Offset    int64
	placed    bool
}

// ProducerMetrics is what the producer reports.
type ProducerMetrics interface {
	Published(topic string, latency time.Duration)
	PublishError(topic string)
}

// Producer is an idempotent, acks=all Kafka producer. Records with the same
// key go to the same partition in order.
type Producer struct {
	async   sarama.AsyncProducer
	logger  *slog.Logger
	metrics ProducerMetrics
	// queue bounds what waits for sarama, whose input channel is
	// unbuffered: Send never blocks, the feeder does.
	queue chan *sarama.ProducerMessage

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

// producerQueueLen bounds records waiting to enter the producer.
const producerQueueLen = 16384

type inflight struct {
	rec  *Record
	sent time.Time
}

// NewProducer connects an idempotent producer.
func NewProducer(cfg KafkaConfig, logger *slog.Logger, metrics ProducerMetrics) (*Producer, error) {
	c := baseSaramaConfig(cfg.ClientID)
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 8
	c.Producer.Retry.Backoff = 250 * time.Millisecond
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Producer.Flush.Frequency = cfg.Linger
	c.Producer.Flush.MaxMessages = 2000
	c.ChannelBufferSize = 4096
	async, err := sarama.NewAsyncProducer(cfg.Brokers, c)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	p := &Producer{async: async, logger: logger, metrics: metrics, queue: make(chan *sarama.ProducerMessage, producerQueueLen)}
	p.wg.Add(3)
	go p.feed()
	go p.successes()
	go p.errors()
	return p, nil
}

// Send queues rec without blocking: ErrProducerFull when Kafka is not
// keeping up, so callers refuse work instead of piling it up.
func (p *Producer) Send(rec *Record) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrProducerClosed
	}
	msg := &sarama.ProducerMessage{
		Topic:    rec.Topic,
		Key:      sarama.StringEncoder(rec.Key),
		Value:    sarama.ByteEncoder(rec.Value),
		Headers:  rec.Headers,
		Metadata: &inflight{rec: rec, sent: time.Now()},
	}
	select {
	case p.queue <- msg:
		return nil
	default:
		return ErrProducerFull
	}
}

// feed moves queued records into sarama until the queue is closed, then
// lets sarama flush and close.
func (p *Producer) feed() {
	defer p.wg.Done()
	for msg := range p.queue {
		p.async.Input() <- msg
	}
	p.async.AsyncClose()
}

func (p *Producer) successes() {
	defer p.wg.Done()
	for m := range p.async.Successes() {
		in := m.Metadata.(*inflight)
		p.metrics.Published(m.Topic, time.Since(in.sent))
		in.rec.Partition, in.rec.Offset, in.rec.placed = m.Partition, m.Offset, true
		if in.rec.Done != nil {
			in.rec.Done(nil)
		}
	}
}

func (p *Producer) errors() {
	defer p.wg.Done()
	for e := range p.async.Errors() {
		in := e.Msg.Metadata.(*inflight)
		p.metrics.PublishError(e.Msg.Topic)
		p.logger.Warn("kafka produce failed", "topic", e.Msg.Topic, "err", e.Err)
		if in.rec.Done != nil {
			in.rec.Done(fmt.Errorf("kafka produce to %s: %w", e.Msg.Topic, e.Err))
		}
	}
}

// Close flushes what is queued (every record gets its Done) and stops.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.queue)
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka producer flush: %w", ctx.Err())
	}
}
