// Package embedded runs caasd's backing services in-process for the
// embedded default and for tests: a Kafka-protocol broker (kfake), Redis
// (miniredis) and a MongoDB-wire server (FerretDB on SQLite). caasd still
// reaches each of them over TCP through its real client library.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process Kafka-protocol broker.
type Kafka struct {
	Cluster *kfake.Cluster
}

// StartKafka starts a one-broker cluster keeping its data in dir (empty:
// in memory) and listening on addr's port (0: any). With syncWrites every
// produce is fsynced before it is acknowledged; without, writes rely on the
// page cache as Kafka's default does (log.flush.interval.messages=MAX).
func StartKafka(dir string, port int, partitions int32, syncWrites bool, topics ...string) (*Kafka, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.GroupMinSessionTimeout(500 * time.Millisecond),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("kafka data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(dir))
		if syncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Kafka{Cluster: c}, nil
}

// Addrs returns the broker addresses.
func (k *Kafka) Addrs() []string { return k.Cluster.ListenAddrs() }

// Close stops the broker.
func (k *Kafka) Close() { k.Cluster.Close() }

// Mongo is an in-process MongoDB-wire server (FerretDB on SQLite).
type Mongo struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// StartMongo serves a SQLite-backed FerretDB from dir on addr
// ("127.0.0.1:0" for any port).
func StartMongo(dir, addr string, logger *slog.Logger) (*Mongo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mongo data dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("mongo data dir: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded mongo: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mongo{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		_ = f.Run(ctx)
	}()
	uriCh := make(chan string, 1)
	go func() { uriCh <- f.MongoDBURI() }()
	select {
	case m.uri = <-uriCh:
	case <-m.done:
		return nil, errors.New("start embedded mongo: server stopped at start")
	case <-time.After(30 * time.Second):
		cancel()
		return nil, errors.New("start embedded mongo: listener not ready within 30 s")
	}
	return m, nil
}

// URI returns the mongodb:// URI of the server.
func (m *Mongo) URI() string { return m.uri }

// Close stops the server and waits for it.
func (m *Mongo) Close() {
	m.cancel()
	<-m.done
}

// Quiet returns a logger that passes on only warnings and errors of l:
// FerretDB logs every connection at info level. Of the two records
// FerretDB logs at warn level for each command it answers with an error,
// the header's (lengths and request ids) is dropped, and so is the
// answer to endSessions, which FerretDB v1 does not implement and the
// MongoDB driver sends on every disconnect.
func Quiet(l *slog.Logger) *slog.Logger {
	return slog.New(&minLevel{h: l.Handler(), min: slog.LevelWarn})
}

// minLevel drops records below min. The attributes and groups a logger
// adds (FerretDB adds some to a logger per request) are kept as they came
// and handed to h only for a record that passes: a text handler formats
// attributes as they are added, which was 15 % of FerretDB's CPU under
// load, for loggers that never log.
type minLevel struct {
	h    slog.Handler
	min  slog.Level
	ops  []handlerOp // applied to h in order before a record passes
	once sync.Once
	full slog.Handler // h with ops applied, made on first use
}

// handlerOp is one WithAttrs (attrs) or WithGroup (group) call.
type handlerOp struct {
	attrs []slog.Attr
	group string
}

func (m *minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m *minLevel) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "Response header:") ||
		strings.HasPrefix(r.Message, "Response message:") && strings.Contains(r.Message, "no such command: 'endSessions'") {
		return nil
	}
	m.once.Do(func() {
		m.full = m.h
		for _, op := range m.ops {
			if op.group != "" {
				m.full = m.full.WithGroup(op.group)
			} else {
				m.full = m.full.WithAttrs(op.attrs)
			}
		}
	})
	return m.full.Handle(ctx, r)
}

func (m *minLevel) with(op handlerOp) slog.Handler {
	ops := make([]handlerOp, len(m.ops), len(m.ops)+1)
	copy(ops, m.ops)
	return &minLevel{h: m.h, min: m.min, ops: append(ops, op)}
}

func (m *minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	if len(a) == 0 {
		return m
	}
	return m.with(handlerOp{attrs: a})
}

func (m *minLevel) WithGroup(n string) slog.Handler {
	if n == "" {
		return m
	}
	return m.with(handlerOp{group: n})
}
