// Package server wires one caasd node together: the backing services
// (real or embedded), the persistence path, the actor engine, the sockets
// and the HTTP API, and takes them down again in order.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caasd/caasd/actors"
	"github.com/caasd/caasd/admin"
	"github.com/caasd/caasd/cluster"
	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/config"
	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/internal/metrics"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/transport"
	"github.com/caasd/caasd/transport/socketio"
)

// Server is one running caasd node.
type Server struct {
	cfg     config.Config
	logger  *slog.Logger
	metrics *metrics.Metrics

	kafka *embedded.Kafka
	redis *embedded.Redis
	mongo *embedded.Mongo

	rdb      *redis.Client
	db       *persistence.Mongo
	producer *persistence.Producer
	tracker  *persistence.Tracker
	engine   *actors.Engine
	members  *cluster.Membership
	place    *placement
	mux      *http.ServeMux
	verifier *auth.Verifier
	rtc      webRTC
	conns    *transport.Registry
	ws       *transport.WSServer
	sio      *socketio.Server
	http     *http.Server
	listener net.Listener

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed chan struct{}
	once   sync.Once
}

// Start brings a node up and returns once it serves. ctx bounds start-up only.
func Start(ctx context.Context, cfg config.Config, logger *slog.Logger) (s *Server, err error) {
	// A node id is unique per process start: a restarted node is a new member.
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	cfg.NodeID += "-" + hex.EncodeToString(suffix[:])
	s = &Server{cfg: cfg, logger: logger, metrics: metrics.New(), closed: make(chan struct{})}
	started := s // s is nil once an error is returned
	defer func() {
		if err != nil {
			started.shutdownServices()
		}
	}()
	if err := s.newTURN(); err != nil {
		return nil, err
	}
	if err := s.startEmbedded(); err != nil {
		return nil, err
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.startPersistence(ctx, bg); err != nil {
		cancel()
		s.wg.Wait()
		return nil, err
	}
	if err := s.startEngine(bg); err != nil {
		cancel()
		s.wg.Wait()
		return nil, err
	}
	if err := s.listen(); err != nil {
		cancel()
		s.wg.Wait()
		return nil, err
	}
	if err := s.startCluster(); err != nil {
		_ = s.listener.Close()
		cancel()
		s.wg.Wait()
		return nil, err
	}
	s.serve()
	logger.Info("caasd serving", "addr", s.Addr(), "node", cfg.NodeID)
	return s, nil
}

func (s *Server) startEmbedded() error {
	k, r, m := s.cfg.Embedded()
	var err error
	if k {
		s.kafka, err = embedded.StartKafka(filepath.Join(s.cfg.DataDir, "kafka"), 0, int32(s.cfg.Kafka.Partitions), true)
		if err != nil {
			return err
		}
		s.cfg.Kafka.Brokers = s.kafka.Addrs()
		s.logger.Info("embedded kafka broker (kfake)", "addrs", s.cfg.Kafka.Brokers, "data", filepath.Join(s.cfg.DataDir, "kafka"))
	}
	if r {
		s.redis, err = embedded.StartRedis(filepath.Join(s.cfg.DataDir, "redis"))
		if err != nil {
			return err
		}
		s.cfg.Redis.URL = s.redis.URL()
		s.logger.Info("embedded redis (miniredis, in memory, saved at shutdown)", "url", s.cfg.Redis.URL, "data", filepath.Join(s.cfg.DataDir, "redis"))
	}
	if m {
		dir := filepath.Join(s.cfg.DataDir, "mongo")
		s.mongo, err = embedded.StartMongo(dir, "127.0.0.1:0", embedded.Quiet(s.logger.With("component", "ferretdb")))
		if err != nil {
			return err
		}
		s.cfg.Mongo.URI = s.mongo.URI()
		s.logger.Info("embedded mongodb-wire server (FerretDB, SQLite)", "uri", s.cfg.Mongo.URI, "data", dir)
	}
	return nil
}

func (s *Server) connect(ctx context.Context) error {
	opts, err := redis.ParseURL(s.cfg.Redis.URL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	opts.PoolSize = 64
	s.rdb = redis.NewClient(opts)
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", s.cfg.Redis.URL, err)
	}
	s.db, err = persistence.ConnectMongo(ctx, s.cfg.Mongo.URI, s.cfg.Mongo.Database)
	if err != nil {
		return err
	}
	if err := s.db.EnsureIndexes(ctx); err != nil {
		return fmt.Errorf("mongodb %s: %w", s.cfg.Mongo.URI, err)
	}
	kc := s.kafkaConfig()
	if err := persistence.EnsureTopics(kc, s.cfg.Kafka.MessageTopic, s.cfg.Kafka.PersistenceTopic,
		s.cfg.Kafka.ModerationTopic, s.cfg.Kafka.RecordingTopic); err != nil {
		return err
	}
	s.producer, err = persistence.NewProducer(kc, s.logger.With("component", "producer"), s.metrics)
	return err
}

func (s *Server) sequencer() *persistence.Sequencer {
	return persistence.NewSequencer(s.rdb, s.cfg.Persistence.StatusTTL, s.cfg.Rooms.RecentBufferLen, s.cfg.Rooms.StateTTL)
}

// restoreWaitsForPersister bounds how long a seq restore waits for the
// persister to store what Kafka holds before it reads the stored seqs.
const restoreWaitsForPersister = 30 * time.Second

// storedSeqs is the seq restore's scan: the stored messages, once the
// persister has stored those published before the restore began; if it
// has not within restoreWaitsForPersister (it is down), the restore goes
// on without them, as a room's own look at MongoDB would.
func (s *Server) storedSeqs(convs *persistence.Conversations) persistence.SeqScan {
	return func(ctx context.Context, yield func(tenant, conv string, seq int64) error) error {
		wctx, cancel := context.WithTimeout(ctx, restoreWaitsForPersister)
		err := persistence.WaitPersisted(wctx, s.kafkaConfig(), s.cfg.Kafka.PersisterGroup, s.cfg.Kafka.MessageTopic)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("restoring seq counters without the messages Kafka still holds", "err", err)
		}
		return convs.StoredSeqs(ctx, yield)
	}
}

func (s *Server) kafkaConfig() persistence.KafkaConfig {
	return persistence.KafkaConfig{Brokers: s.cfg.Kafka.Brokers, ClientID: "caasd-" + s.cfg.NodeID, Partitions: s.cfg.Kafka.Partitions, Linger: s.cfg.Kafka.ProducerLinger}
}

func (s *Server) startPersistence(ctx, bg context.Context) error {
	var err error
	seq := s.sequencer()
	s.tracker, err = persistence.NewTracker(persistence.TrackerConfig{
		Kafka: s.kafkaConfig(), PersistenceTopic: s.cfg.Kafka.PersistenceTopic,
		Timeout: s.cfg.Persistence.ConfirmationTimeout, MaxAttempts: s.cfg.Persistence.MaxAttempts, BehindWait: s.cfg.Persistence.BehindWait,
		MaxPending: s.cfg.Persistence.MaxPending,
	}, s.producer, seq, s.logger.With("component", "confirmations"), s.metrics)
	if err != nil {
		return err
	}
	s.metrics.WatchPending(s.tracker.Pending)
	trackerErr := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.tracker.Run(bg); err != nil {
			s.logger.Error("confirmations stopped", "err", err)
			trackerErr <- err
		}
	}()
	select {
	case <-s.tracker.Ready():
	case err := <-trackerErr:
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the confirmation consumer: %w", ctx.Err())
	}
	if !s.cfg.Persistence.PersisterEnabled {
		s.logger.Info("persister disabled (PERSISTER_ENABLED=false)")
		return nil
	}
	p, err := persistence.NewPersister(persistence.PersisterConfig{
		Kafka: s.kafkaConfig(), Group: s.cfg.Kafka.PersisterGroup,
		MessageTopic: s.cfg.Kafka.MessageTopic, PersistenceTopic: s.cfg.Kafka.PersistenceTopic,
		BatchSize: s.cfg.Persistence.BatchSize, Concurrency: s.cfg.Persistence.InsertConcurrency, Linger: s.cfg.Persistence.Linger,
		StatusTTL: s.cfg.Persistence.StatusTTL, SessionTimeout: 6 * time.Second, Local: s.tracker,
	}, s.db, s.rdb, s.producer, s.logger.With("component", "persister"), s.metrics)
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := p.Run(bg); err != nil {
			s.logger.Error("persister stopped", "err", err)
		}
	}()
	return nil
}

func (s *Server) startEngine(bg context.Context) error {
	s.conns = transport.NewRegistry()
	s.startWebRTC(bg)
	convs := persistence.NewConversations(s.db, s.rdb, s.cfg.Rooms.AuthzCacheTTL, s.metrics)
	audit := persistence.NewModeration(s.db, s.producer, s.cfg.Kafka.ModerationTopic)
	seq := s.sequencer()
	assigner := persistence.NewSeqBatcher(seq, persistence.SeqBatcherConfig{})
	s.wg.Add(1)
	go func() { defer s.wg.Done(); assigner.Run(bg) }()
	if s.cfg.Rooms.SeqRestore {
		restorer := persistence.NewSeqRestorer(seq, s.storedSeqs(convs), s.cfg.Rooms.SeqCheckInterval, s.logger.With("component", "seq"))
		s.wg.Add(1)
		go func() { defer s.wg.Done(); restorer.Run(bg) }()
	}
	s.engine = actors.NewEngine(actors.Deps{
		NodeID: s.cfg.NodeID, Logger: s.logger, Metrics: s.metrics,
		Conversations: convs, Sequencer: seq, Assigner: assigner, History: persistence.NewHistory(s.db),
		Producer: s.producer, Tracker: s.tracker, Conns: s.conns,
		Snapshots: persistence.NewSnapshots(s.rdb, s.cfg.Rooms.StateTTL), Moderation: audit,
		Leases:       persistence.NewLeases(s.rdb, s.cfg.Cluster.LeaseTTL),
		MessageTopic: s.cfg.Kafka.MessageTopic, Limits: s.cfg.Limits, Rooms: s.cfg.Rooms,
		ICE: s.rtc.turn, Recordings: s.rtc.recordings, ConsentTimeout: s.cfg.Calls.ConsentTimeout,
	})
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.engine.Run(bg) }()

	verifier := auth.NewVerifier(s.cfg.JWTSecret)
	s.verifier = verifier
	ws, err := transport.NewWSServer(transport.WSConfig{
		NodeID: s.cfg.NodeID, MaxFrameBytes: s.cfg.Limits.MaxFrameBytes, HardMaxFrameBytes: s.cfg.Limits.HardMaxFrameBytes,
		OutboundQueueLen: s.cfg.Limits.OutboundQueueLen, MaxConnections: 200000, WriteRing: s.cfg.WSIOURing,
	}, verifier, s.engine, s.conns, s.logger.With("component", "ws"), s.metrics)
	if err != nil {
		return err
	}
	s.ws = ws
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.ws.Run(bg) }()
	s.sio = socketio.NewServer(socketio.Config{
		NodeID: s.cfg.NodeID, MaxPayloadBytes: s.cfg.Limits.HardMaxFrameBytes, MaxFrameBytes: s.cfg.Limits.MaxFrameBytes,
		OutboundQueueLen: s.cfg.Limits.OutboundQueueLen,
	}, verifier, s.engine, s.conns, s.logger.With("component", "socketio"), s.metrics)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.sio.Run(bg) }()

	mux := http.NewServeMux()
	s.mux = mux
	mux.Handle("GET /ws", s.ws)
	mux.Handle("/socket.io/", s.sio)
	(&admin.Ops{Gatherer: s.metrics.Registry, Verifier: verifier, Checks: map[string]admin.Check{
		"redis": func(ctx context.Context) error { return s.rdb.Ping(ctx).Err() },
		"mongo": s.db.Ping,
		"kafka": func(context.Context) error {
			return persistence.EnsureTopics(s.kafkaConfig(), s.cfg.Kafka.MessageTopic)
		},
	}}).Register(mux)
	(&admin.Conversations{Store: convs, Rooms: s.engine, Verifier: verifier, Logger: s.logger}).Register(mux)
	(&admin.Messages{Engine: s.engine, Verifier: verifier, Logger: s.logger}).Register(mux)
	(&admin.Rooms{Engine: s.engine, Log: audit, Convs: convs, Verifier: verifier, Logger: s.logger}).Register(mux)
	s.registerWebRTC(mux, verifier)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug)}
	return nil
}

func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %s: %w", s.cfg.HTTPAddr, err)
	}
	s.listener = ln
	return nil
}

func (s *Server) serve() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server", "err", err)
		}
	}()
}

// Addr is the address the HTTP server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Config is the effective configuration (embedded services filled in).
func (s *Server) Config() config.Config { return s.cfg }

// Close drains the node: it leaves the cluster and hands its rooms over
// (snapshot, lease released, stopped), stops accepting, flushes the
// producer so that every message already accepted is in Kafka, closes
// every socket with closeCode so clients reconnect elsewhere, and stops the
// background work.
func (s *Server) Close(ctx context.Context, closeCode uint16) {
	s.once.Do(func() {
		s.leaveCluster()
		s.engine.Drain(ctx)
		if err := s.producer.Close(ctx); err != nil {
			s.logger.Warn("producer flush", "err", err)
		}
		s.sio.Close(closeCode, "server shutting down") // ends pending long-polls, which Shutdown would wait for
		s.conns.Each(func(c transport.Conn) { c.Close(closeCode, "server shutting down") })
		_ = s.http.Shutdown(ctx)
		s.engine.Shutdown(ctx)
		if s.members != nil {
			s.members.Close()
		}
		s.cancel()
		s.wg.Wait()
		s.shutdownServices()
		close(s.closed)
	})
}

func (s *Server) shutdownServices() {
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
	if s.db != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.db.Close(ctx)
		cancel()
	}
	if s.mongo != nil {
		s.mongo.Close()
	}
	if s.redis != nil {
		if err := s.redis.Close(); err != nil {
			s.logger.Warn("embedded redis not saved; the next start rebuilds what it needs", "err", err)
		}
	}
	if s.kafka != nil {
		s.kafka.Close()
	}
}
