// Package metrics defines caasd's Prometheus metrics, named after the
// platform's earlier services (socket.messages.published becomes
// socket_messages_published_total) so dashboards keep working.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector of one caasd node.
type Metrics struct {
	Registry *prometheus.Registry

	published        *prometheus.CounterVec
	publishLatency   prometheus.Histogram
	publishErrors    *prometheus.CounterVec
	confirmations    *prometheus.CounterVec
	confirmTimeouts  prometheus.Counter
	persisted        prometheus.Counter
	persistLatency   prometheus.Histogram
	persistErrors    prometheus.Counter
	duplicates       prometheus.Counter
	connections      prometheus.Gauge
	slowConsumers    prometheus.Counter
	roomsActive      prometheus.Gauge
	membersOnline    prometheus.Gauge
	authzHits        prometheus.Counter
	authzMisses      prometheus.Counter
	messagesRejected *prometheus.CounterVec
	moderation       *prometheus.CounterVec
}

// New registers caasd's collectors on a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.published = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socket_messages_published_total", Help: "Records published to Kafka, by topic."}, []string{"topic"})
	m.publishLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "socket_messages_publish_latency_seconds", Help: "Kafka publish latency.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.publishErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socket_messages_publish_errors_total", Help: "Kafka publish errors, by topic."}, []string{"topic"})
	m.confirmations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socket_delivery_confirmations_total", Help: "Persistence confirmations sent to senders, by status."}, []string{"status"})
	m.confirmTimeouts = prometheus.NewCounter(prometheus.CounterOpts{Name: "socket_delivery_timeouts_total", Help: "Persistence confirmations that timed out (each leads to a resend or a failure)."})
	m.persisted = prometheus.NewCounter(prometheus.CounterOpts{Name: "kafka_messages_persisted_total", Help: "Messages written to MongoDB by the persister."})
	m.persistLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kafka_messages_persistence_latency_seconds", Help: "Time to persist one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.persistErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "kafka_messages_persistence_errors_total", Help: "Messages the persister could not write."})
	m.duplicates = prometheus.NewCounter(prometheus.CounterOpts{Name: "kafka_messages_duplicates_skipped_total", Help: "Messages already stored, skipped by the persister."})
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "socket_connections", Help: "Open client connections."})
	m.slowConsumers = prometheus.NewCounter(prometheus.CounterOpts{Name: "socket_slow_consumers_total", Help: "Connections closed because their outbound queue was full."})
	m.roomsActive = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rooms_active_count", Help: "Active room actors on this node."})
	m.membersOnline = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rooms_member_count", Help: "Online room members (connections) on this node."})
	m.authzHits = prometheus.NewCounter(prometheus.CounterOpts{Name: "rooms_authorization_cache_hits_total", Help: "Conversation authorization cache hits."})
	m.authzMisses = prometheus.NewCounter(prometheus.CounterOpts{Name: "rooms_authorization_cache_misses_total", Help: "Conversation authorization cache misses."})
	m.messagesRejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socket_messages_rejected_total", Help: "Messages refused before Kafka, by code."}, []string{"code"})
	m.moderation = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rooms_moderation_actions_total", Help: "Moderation actions, by kind."}, []string{"action"})
	for _, c := range []prometheus.Collector{m.moderation, m.published, m.publishLatency, m.publishErrors, m.confirmations, m.confirmTimeouts,
		m.persisted, m.persistLatency, m.persistErrors, m.duplicates, m.connections, m.slowConsumers,
		m.roomsActive, m.membersOnline, m.authzHits, m.authzMisses, m.messagesRejected} {
		f(c)
	}
	return m
}

// Published counts one record published to topic.
func (m *Metrics) Published(topic string, latency time.Duration) {
	m.published.WithLabelValues(topic).Inc()
	m.publishLatency.Observe(latency.Seconds())
}

// PublishError counts a failed publish.
func (m *Metrics) PublishError(topic string) { m.publishErrors.WithLabelValues(topic).Inc() }

// Confirmation counts a confirmation sent with status.
func (m *Metrics) Confirmation(status string) { m.confirmations.WithLabelValues(status).Inc() }

// WatchPending reports pending() on every scrape as
// socket_delivery_pending: the messages of this node awaiting their
// persistence outcome, which grow while the store falls behind (up to
// PERSISTENCE_MAX_PENDING, when sends are refused). Call it once.
func (m *Metrics) WatchPending(pending func() int) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "socket_delivery_pending",
		Help: "Messages of this node awaiting their persistence outcome.",
	}, func() float64 { return float64(pending()) }))
}

// ConfirmationTimeout counts a confirmation timeout.
func (m *Metrics) ConfirmationTimeout() { m.confirmTimeouts.Inc() }

// Persisted counts n messages persisted in one batch.
func (m *Metrics) Persisted(n int, latency time.Duration) {
	m.persisted.Add(float64(n))
	m.persistLatency.Observe(latency.Seconds())
}

// PersistenceError counts a message that could not be persisted.
func (m *Metrics) PersistenceError() { m.persistErrors.Inc() }

// DuplicatesSkipped counts n duplicates.
func (m *Metrics) DuplicatesSkipped(n int) { m.duplicates.Add(float64(n)) }

// ConnOpened counts an opened connection.
func (m *Metrics) ConnOpened() { m.connections.Inc() }

// ConnClosed counts a closed connection.
func (m *Metrics) ConnClosed() { m.connections.Dec() }

// SlowConsumer counts a connection dropped for not reading.
func (m *Metrics) SlowConsumer() { m.slowConsumers.Inc() }

// RoomActivated counts a room actor started.
func (m *Metrics) RoomActivated() { m.roomsActive.Inc() }

// RoomPassivated counts a room actor stopped.
func (m *Metrics) RoomPassivated() { m.roomsActive.Dec() }

// MemberOnline moves the online member gauge.
func (m *Metrics) MemberOnline(delta int) { m.membersOnline.Add(float64(delta)) }

// MessageRejected counts a message refused with code.
func (m *Metrics) MessageRejected(code string) { m.messagesRejected.WithLabelValues(code).Inc() }

// CacheHit counts an authorization cache hit.
func (m *Metrics) CacheHit() { m.authzHits.Inc() }

// CacheMiss counts an authorization cache miss.
func (m *Metrics) CacheMiss() { m.authzMisses.Inc() }

// ModerationAction counts a moderation action by kind.
func (m *Metrics) ModerationAction(action string) { m.moderation.WithLabelValues(action).Inc() }
