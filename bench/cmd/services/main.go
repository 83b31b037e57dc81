// Command services runs caasd's backing services for the load benchmarks
// apart from caasd, so that caasd runs in production mode against them over
// TCP: a kfake Kafka broker keeping its log in a data directory and FerretDB
// (MongoDB wire protocol on SQLite). Redis is a real redis-server started
// beside it by bench/run.sh, which also runs Kafka and MongoDB as two
// processes (-only), as they are in production: in one process with one P,
// a long SQLite insert would hold up every Kafka acknowledgement.
//
// Once its services listen it prints, one per line,
//
//	KAFKA_BROKERS=127.0.0.1:port
//	MONGO_URI=mongodb://127.0.0.1:port/
//
// and runs until SIGTERM or SIGINT, or until -max-run has passed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // for -pprof only: the services are a bench tool
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caasd/caasd/internal/embedded"
)

func main() {
	dir := flag.String("data", "./bench-data", "directory for the broker's log and the SQLite files")
	kafkaPort := flag.Int("kafka-port", 0, "broker port (0: any)")
	mongoAddr := flag.String("mongo-addr", "127.0.0.1:0", "FerretDB listen address")
	partitions := flag.Int("partitions", 8, "partitions of the seeded topics (caasd's KAFKA_PARTITIONS)")
	topics := flag.String("topics", "chat.messages,chat.persistence.events,room.moderation.events,webrtc.recording.events", "topics to create at start")
	maxRun := flag.Duration("max-run", 2*time.Hour, "stop by itself after this long")
	only := flag.String("only", "", `run only "kafka" or only "mongo" (default: both)`)
	kafkaSync := flag.Bool("kafka-sync", false, "fsync every produce before acknowledging it (Kafka's default, and this default, is the page cache: durability comes from replicas)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:0), printed as PPROF=host:port")
	flag.Parse()
	if *pprofAddr != "" {
		if err := servePprof(*pprofAddr); err != nil {
			fmt.Fprintln(os.Stderr, "services:", err)
			os.Exit(1)
		}
	}
	if *only != "" && *only != "kafka" && *only != "mongo" {
		fmt.Fprintln(os.Stderr, `services: -only must be "kafka" or "mongo"`)
		os.Exit(2)
	}
	if err := run(*dir, *only, *kafkaPort, *kafkaSync, *mongoAddr, int32(*partitions), strings.Split(*topics, ","), *maxRun); err != nil {
		fmt.Fprintln(os.Stderr, "services:", err)
		os.Exit(1)
	}
}

func run(dir, only string, kafkaPort int, kafkaSync bool, mongoAddr string, partitions int32, topics []string, maxRun time.Duration) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if only != "mongo" {
		k, err := embedded.StartKafka(filepath.Join(dir, "kafka"), kafkaPort, partitions, kafkaSync, topics...)
		if err != nil {
			return err
		}
		defer k.Close()
		fmt.Printf("KAFKA_BROKERS=%s\n", strings.Join(k.Addrs(), ","))
	}
	if only != "kafka" {
		m, err := embedded.StartMongo(filepath.Join(dir, "mongo"), mongoAddr, embedded.Quiet(logger))
		if err != nil {
			return err
		}
		defer m.Close()
		fmt.Printf("MONGO_URI=%s\n", m.URI())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, maxRun)
	defer cancel()
	<-ctx.Done()
	return nil
}

// servePprof serves the default mux's /debug/pprof so a slow store or
// broker can be profiled in the middle of a run; it lives as long as the
// process.
func servePprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof listener: %w", err)
	}
	fmt.Printf("PPROF=%s\n", ln.Addr())
	go func() { _ = http.Serve(ln, nil) }()
	return nil
}
