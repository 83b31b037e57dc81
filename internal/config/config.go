// Package config holds caasd's one typed configuration tree: every setting,
// its default, and its validation, read from the environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of a caasd node. Durations and sizes
// carry their unit in the field name.
type Config struct {
	// HTTPAddr is where the WebSocket, Socket.IO, public and admin HTTP API listen.
	HTTPAddr string
	// JWTSecret signs and verifies HS256 tokens.
	JWTSecret string
	// DataDir holds the embedded services' files (Kafka log, SQLite).
	DataDir string
	// LogLevel is one of debug, info, warn, error.
	LogLevel string
	// LogRepeatPerSecond bounds the log records of one kind (level and
	// message) written a second; the rest are counted, not written. 0
	// writes all.
	LogRepeatPerSecond int
	// NodeID names this node in logs, metrics and message origins.
	NodeID string

	Kafka       Kafka
	Cluster     Cluster
	Redis       Redis
	Mongo       Mongo
	Rooms       Rooms
	Persistence Persistence
	Limits      Limits
	TURN        TURN
	Calls       Calls

	// Demo creates a demo conversation and prints tokens at start.
	Demo bool
	// ShutdownTimeout bounds the graceful drain on SIGTERM.
	ShutdownTimeout time.Duration
	// WSIOURing writes WebSocket clients through io_uring, one system call
	// per chunk of connections; caasd falls back to write(2) by itself
	// where io_uring is not available.
	WSIOURing bool
}

// Kafka configures the producer and consumers.
type Kafka struct {
	// Brokers is empty when caasd embeds its own broker.
	Brokers []string
	// MessageTopic carries chat messages (seed: chat.messages).
	MessageTopic string
	// PersistenceTopic carries persistence confirmations.
	PersistenceTopic string
	// ModerationTopic carries room moderation audit events.
	ModerationTopic string
	// RecordingTopic carries call recording events.
	RecordingTopic string
	// Partitions is the partition count used when caasd creates topics.
	Partitions int
	// PersisterGroup is the consumer group of the persister.
	PersisterGroup string
	// ProducerLinger is how long the producer holds a record for others
	// to join its request; 0 sends whenever no request is in flight.
	ProducerLinger time.Duration
}

// Cluster configures gossip membership and actor remoting.
type Cluster struct {
	// Name separates clusters sharing a network.
	Name string
	// Bind and Advertise are the gossip host:port (port 0: any).
	Bind, Advertise string
	// Seeds are gossip addresses to join.
	Seeds []string
	// Secret encrypts gossip; nodes with another secret cannot join.
	Secret string
	// RemoteBind and RemoteAdvertise are the actor remoting host:port.
	RemoteBind, RemoteAdvertise string
	// LeaseTTL is how long a room's lease outlives its node.
	LeaseTTL time.Duration
}

// Redis configures the Redis connection.
type Redis struct {
	// URL is empty when caasd embeds its own Redis.
	URL string
}

// Mongo configures the MongoDB connection.
type Mongo struct {
	// URI is empty when caasd embeds its own MongoDB-wire server.
	URI string
	// Database is the database name.
	Database string
}

// Rooms configures room state and authorization.
type Rooms struct {
	// StateTTL is how long a room snapshot is kept after the last activity.
	StateTTL time.Duration
	// AuthzCacheTTL is how long conversation membership is cached in Redis.
	AuthzCacheTTL time.Duration
	// RecentBufferLen bounds the per-room buffer of recent messages.
	RecentBufferLen int
	// CatchupLimit is the largest gap a join with since_seq fills; beyond
	// it the client pages history.
	CatchupLimit int
	// MaxMembersOnline bounds the online connections of one room.
	MaxMembersOnline int
	// SeqRestore has nodes restore every room's seq counter in one pass
	// over the stored messages when Redis lost them, instead of each room
	// looking up its own highest seq: on by default with the embedded
	// store, where that look scans every stored message; off with
	// MONGO_URI, where it is an index lookup and the pass reads them all.
	SeqRestore bool
	// SeqCheckInterval is how often a node with SeqRestore checks that
	// Redis still holds the counters.
	SeqCheckInterval time.Duration
}

// Persistence configures the Kafka → MongoDB path and confirmations.
type Persistence struct {
	// PersisterEnabled runs the persister consumer group inside this node.
	PersisterEnabled bool
	// BatchSize bounds one persister bulk insert (seed: MESSAGE_PERSISTENCE_BATCH_SIZE);
	// batches are what has arrived when the store is free, up to this.
	BatchSize int
	// InsertConcurrency bounds the persister's bulk inserts in flight.
	InsertConcurrency int
	// Linger is how long a batch may wait for more messages after its
	// first before it goes to an insert slot (0: none, a batch is what has
	// arrived when a slot is free). Fewer, larger inserts cost the store
	// less per message: in the fanout bench (1,000 msgs/s) 50 ms took the
	// store from 30-38 % to 21-25 % of its core.
	Linger time.Duration
	// ConfirmationTimeout is how long a sender waits for message:persisted before a resend.
	ConfirmationTimeout time.Duration
	// MaxAttempts bounds sends of one message before message:failed.
	MaxAttempts int
	// BehindWait is how long a message whose record the persisters have
	// not reached yet is waited for without a resend (0: resend at every
	// ConfirmationTimeout); it still counts its attempts after that.
	BehindWait time.Duration
	// StatusTTL is how long a message's status is kept in Redis.
	StatusTTL time.Duration
	// MaxPending bounds messages awaiting confirmation on this node.
	MaxPending int
}

// Limits bounds what one client may send.
type Limits struct {
	// MaxFrameBytes is the largest frame accepted; larger ones get too_large.
	MaxFrameBytes int
	// HardMaxFrameBytes is the size above which the socket is closed (1009).
	HardMaxFrameBytes int
	// MaxTextChars bounds the text of one message.
	MaxTextChars int
	// OutboundQueueLen bounds the frames waiting for one slow client.
	OutboundQueueLen int
	// PerMinute and PerHour bound messages per user across its connections.
	PerMinute int
	PerHour   int
	// SpamRepeat is how many times the same text may be sent within SpamWindow.
	SpamRepeat int
	SpamWindow time.Duration
	// ProhibitedPatterns are regular expressions a message text must not match.
	ProhibitedPatterns []*regexp.Regexp
	// MaxRoomsPerConn bounds the rooms one connection may join.
	MaxRoomsPerConn int
}

// TURN configures the TURN servers handed to WebRTC clients.
type TURN struct {
	Host          string
	Port          int
	Secret        string
	Servers       string
	CredentialTTL time.Duration
	// ProbeInterval is the time between health probes of each TURN server.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one health probe of one TURN server.
	ProbeTimeout time.Duration
	// FailureThreshold is how many failed probes in a row mark a server unhealthy.
	FailureThreshold int
}

// Calls configures WebRTC calls.
type Calls struct {
	// ConsentTimeout is how long participants have to answer a recording consent request.
	ConsentTimeout time.Duration
}

// Embedded reports which services caasd must run in-process.
func (c Config) Embedded() (kafka, redis, mongo bool) {
	return len(c.Kafka.Brokers) == 0, c.Redis.URL == "", c.Mongo.URI == ""
}

// defaultJWTSecret is used only when every service is embedded, so that
// `go run ./cmd/caasd` works on a fresh machine; production must set JWT_SECRET.
const defaultJWTSecret = "caasd-embedded-dev-secret-change-me"

// FromEnv reads the configuration from getenv (os.Getenv in production) and
// validates it. The error names the first bad variable.
func FromEnv(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		HTTPAddr:           p.str("HTTP_ADDR", ":8080"),
		JWTSecret:          p.str("JWT_SECRET", ""),
		DataDir:            p.str("DATA_DIR", "./data"),
		LogLevel:           p.str("LOG_LEVEL", "info"),
		LogRepeatPerSecond: p.integer("LOG_REPEAT_PER_S", 20, 0, 1_000_000),
		NodeID:             p.str("NODE_ID", ""),
		Demo:               p.boolean("DEMO", false),
		ShutdownTimeout:    p.duration("SHUTDOWN_TIMEOUT_MS", time.Millisecond, 15*time.Second),
		WSIOURing:          p.boolean("WS_IO_URING", true),
		Kafka: Kafka{
			Brokers:          p.list("KAFKA_BROKERS"),
			MessageTopic:     p.str("KAFKA_MESSAGE_TOPIC", "chat.messages"),
			PersistenceTopic: p.str("KAFKA_PERSISTENCE_TOPIC", "chat.persistence.events"),
			ModerationTopic:  p.str("KAFKA_MODERATION_TOPIC", "room.moderation.events"),
			RecordingTopic:   p.str("KAFKA_RECORDING_TOPIC", "webrtc.recording.events"),
			Partitions:       p.integer("KAFKA_PARTITIONS", 8, 1, 1024),
			PersisterGroup:   p.str("KAFKA_PERSISTER_GROUP", "caasd-persister"),
			ProducerLinger:   time.Duration(p.integer("KAFKA_PRODUCER_LINGER_MS", 2, 0, 1000)) * time.Millisecond,
		},
		Cluster: Cluster{
			Name:            p.str("CLUSTER_NAME", "caasd"),
			Bind:            p.str("CLUSTER_BIND", "127.0.0.1:0"),
			Advertise:       p.str("CLUSTER_ADVERTISE", ""),
			Seeds:           p.list("CLUSTER_SEEDS"),
			Secret:          p.str("CLUSTER_SECRET", ""),
			RemoteBind:      p.str("CLUSTER_REMOTE_BIND", "127.0.0.1:0"),
			RemoteAdvertise: p.str("CLUSTER_REMOTE_ADVERTISE", ""),
			LeaseTTL:        p.duration("ROOM_LEASE_TTL_MS", time.Millisecond, 4*time.Second),
		},
		Redis: Redis{URL: p.str("REDIS_URL", "")},
		Mongo: Mongo{
			URI:      p.str("MONGO_URI", ""),
			Database: p.str("MONGO_DB", "caas"),
		},
		Rooms: Rooms{
			StateTTL:         p.duration("ROOM_STATE_TTL_HOURS", time.Hour, 24*time.Hour),
			AuthzCacheTTL:    p.duration("ROOM_AUTHZ_CACHE_TTL", time.Second, 300*time.Second),
			RecentBufferLen:  p.integer("ROOM_RECENT_BUFFER", 512, 16, 100000),
			CatchupLimit:     p.integer("ROOM_CATCHUP_LIMIT", 500, 1, 100000),
			MaxMembersOnline: p.integer("ROOM_MAX_ONLINE", 100000, 1, 10000000),
			SeqRestore:       p.boolean("ROOM_SEQ_RESTORE", strings.TrimSpace(getenv("MONGO_URI")) == ""),
			SeqCheckInterval: p.duration("ROOM_SEQ_CHECK_MS", time.Millisecond, 10*time.Second),
		},
		Persistence: Persistence{
			PersisterEnabled:    p.boolean("PERSISTER_ENABLED", true),
			BatchSize:           p.integer("MESSAGE_PERSISTENCE_BATCH_SIZE", 500, 1, 10000),
			InsertConcurrency:   p.integer("MESSAGE_PERSISTENCE_CONCURRENCY", 2, 1, 64),
			Linger:              time.Duration(p.integer("MESSAGE_PERSISTENCE_LINGER_MS", 50, 0, 10000)) * time.Millisecond,
			ConfirmationTimeout: p.duration("PERSISTENCE_CONFIRMATION_TIMEOUT_MS", time.Millisecond, 5000*time.Millisecond),
			MaxAttempts:         p.integer("PERSISTENCE_MAX_ATTEMPTS", 3, 1, 100),
			BehindWait:          time.Duration(p.integer("PERSISTENCE_BEHIND_WAIT_S", 120, 0, 86400)) * time.Second,
			StatusTTL:           p.duration("MESSAGE_STATUS_TTL_S", time.Second, 24*time.Hour),
			MaxPending:          p.integer("PERSISTENCE_MAX_PENDING", 200000, 1, 100000000),
		},
		Limits: Limits{
			MaxFrameBytes:      p.integer("WS_MAX_FRAME_BYTES", 64*1024, 256, 16<<20),
			HardMaxFrameBytes:  p.integer("WS_HARD_MAX_FRAME_BYTES", 1<<20, 256, 64<<20),
			MaxTextChars:       p.integer("MESSAGE_MAX_TEXT_CHARS", 4000, 1, 1<<20),
			OutboundQueueLen:   p.integer("WS_OUTBOUND_QUEUE", 1024, 1, 1<<20),
			PerMinute:          p.integer("RATE_LIMIT_PER_MINUTE", 600, 1, 1<<30),
			PerHour:            p.integer("RATE_LIMIT_PER_HOUR", 10000, 1, 1<<30),
			SpamRepeat:         p.integer("SPAM_REPEAT_COUNT", 5, 1, 1<<20),
			SpamWindow:         p.duration("SPAM_WINDOW_S", time.Second, 60*time.Second),
			ProhibitedPatterns: p.patterns("PROHIBITED_PATTERNS"),
			MaxRoomsPerConn:    p.integer("WS_MAX_ROOMS_PER_CONN", 256, 1, 100000),
		},
		TURN: TURN{
			Host:             p.str("TURN_HOST", ""),
			Port:             p.integer("TURN_PORT", 3478, 1, 65535),
			Secret:           p.str("TURN_SECRET", ""),
			Servers:          p.str("TURN_SERVERS", ""),
			CredentialTTL:    p.duration("TURN_CREDENTIAL_TTL", time.Second, 86400*time.Second),
			ProbeInterval:    p.duration("TURN_PROBE_INTERVAL_MS", time.Millisecond, 10*time.Second),
			ProbeTimeout:     p.duration("TURN_PROBE_TIMEOUT_MS", time.Millisecond, 3*time.Second),
			FailureThreshold: p.integer("TURN_FAILURE_THRESHOLD", 3, 1, 1000),
		},
		Calls: Calls{
			ConsentTimeout: p.duration("CALL_CONSENT_TIMEOUT_MS", time.Millisecond, 30000*time.Millisecond),
		},
	}
	if p.err != nil {
		return Config{}, p.err
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) validate() error {
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("HTTP_ADDR %q: %w", c.HTTPAddr, err)
	}
	k, r, m := c.Embedded()
	if c.JWTSecret == "" {
		if !(k && r && m) {
			return fmt.Errorf("JWT_SECRET: %w (required unless every service is embedded)", ErrMissing)
		}
		c.JWTSecret = defaultJWTSecret
	}
	if len(c.JWTSecret) < 16 {
		return fmt.Errorf("JWT_SECRET: %w: at least 16 bytes", ErrInvalid)
	}
	for name, addr := range map[string]string{"CLUSTER_BIND": c.Cluster.Bind, "CLUSTER_REMOTE_BIND": c.Cluster.RemoteBind} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s %q: %w", name, addr, err)
		}
	}
	for _, s := range c.Cluster.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("CLUSTER_SEEDS %q: %w: want host:port", s, ErrInvalid)
		}
	}
	if c.Cluster.LeaseTTL < 2*time.Second {
		return fmt.Errorf("ROOM_LEASE_TTL_MS: %w: at least 2000", ErrInvalid)
	}
	if c.Redis.URL != "" {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			return fmt.Errorf("REDIS_URL %q: %w: want redis://host:port", c.Redis.URL, ErrInvalid)
		}
	}
	if c.Mongo.URI != "" && !strings.HasPrefix(c.Mongo.URI, "mongodb://") && !strings.HasPrefix(c.Mongo.URI, "mongodb+srv://") {
		return fmt.Errorf("MONGO_URI %q: %w: want mongodb://…", c.Mongo.URI, ErrInvalid)
	}
	for _, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("KAFKA_BROKERS %q: %w: want host:port", b, ErrInvalid)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("LOG_LEVEL %q: %w: want debug, info, warn or error", c.LogLevel, ErrInvalid)
	}
	if c.Limits.MaxFrameBytes > c.Limits.HardMaxFrameBytes {
		return fmt.Errorf("WS_MAX_FRAME_BYTES: %w: larger than WS_HARD_MAX_FRAME_BYTES", ErrInvalid)
	}
	if c.Limits.PerMinute > c.Limits.PerHour {
		return fmt.Errorf("RATE_LIMIT_PER_MINUTE: %w: larger than RATE_LIMIT_PER_HOUR", ErrInvalid)
	}
	if c.TURN.Host != "" && c.TURN.Secret == "" {
		return fmt.Errorf("TURN_SECRET: %w (required with TURN_HOST)", ErrMissing)
	}
	return nil
}

// ErrInvalid marks a variable whose value cannot be used.
var ErrInvalid = errors.New("invalid value")

// ErrMissing marks a required variable that is not set.
var ErrMissing = errors.New("not set")

// parser reads typed values and keeps the first error, so FromEnv reads as a table.
type parser struct {
	getenv func(string) string
	err    error
}

func (p *parser) fail(name, val string, why string) {
	if p.err == nil {
		p.err = fmt.Errorf("%s %q: %w: %s", name, val, ErrInvalid, why)
	}
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *parser) list(name string) []string {
	var out []string
	for _, s := range strings.Split(p.getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) integer(name string, def, lo, hi int) int {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, v, "not an integer")
		return def
	}
	if n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("out of range [%d, %d]", lo, hi))
		return def
	}
	return n
}

func (p *parser) duration(name string, unit, def time.Duration) time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 {
		p.fail(name, v, "want a positive number")
		return def
	}
	return time.Duration(n * float64(unit))
}

func (p *parser) boolean(name string, def bool) bool {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "want true or false")
		return def
	}
	return b
}

// patterns reads regular expressions separated by ";;" (a single ";" may
// appear inside a pattern).
func (p *parser) patterns(name string) []*regexp.Regexp {
	v := p.getenv(name)
	var out []*regexp.Regexp
	for _, s := range strings.Split(v, ";;") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		re, err := regexp.Compile(s)
		if err != nil {
			p.fail(name, s, err.Error())
			return nil
		}
		out = append(out, re)
	}
	return out
}
