// Command caasd is the real-time engine of the chat platform: WebSocket and
// Socket.IO clients, rooms as actors, messages made durable through Kafka
// into MongoDB. With no KAFKA_BROKERS, REDIS_URL or MONGO_URI it runs its
// own embedded broker, Redis and MongoDB-wire server under ./data.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caasd/caasd/internal/config"
	"github.com/caasd/caasd/internal/logthrottle"
	"github.com/caasd/caasd/server"
	"github.com/caasd/caasd/transport"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "caasd:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	logger := slog.New(logthrottle.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}), time.Second, cfg.LogRepeatPerSecond))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	k, r, m := cfg.Embedded()
	if os.Getenv("DEMO") == "" && k && r && m {
		cfg.Demo = true
	}
	s, err := server.Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if cfg.Demo {
		t, err := s.SetupDemo(ctx)
		if err != nil {
			logger.Error("demo setup failed", "err", err)
		} else {
			printDemo(s.Addr(), t)
		}
	}
	<-ctx.Done()
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	s.Close(sctx, transport.CloseServiceRestart)
	return nil
}

func printDemo(addr string, t server.DemoTokens) {
	fmt.Fprintf(os.Stdout, `
caasd is ready on %[1]s (embedded Kafka, Redis and MongoDB).
Demo tenant %[2]q, conversation %[3]q with users alice (owner) and bob (member).

  ALICE_TOKEN=%[4]s
  BOB_TOKEN=%[5]s
  ADMIN_TOKEN=%[6]s

Try it (websocat or any WebSocket client):
  websocat "ws://%[1]s/ws?token=$ALICE_TOKEN"
  {"event":"joinRoom","data":{"conversation_id":"%[3]s"}}
  {"event":"sendMessage","data":{"message_id":"m-1","conversation_id":"%[3]s","content":{"type":"text","text":"hello"}}}

`, addr, server.DemoTenant, server.DemoConversation, t.Alice, t.Bob, t.Admin)
}
