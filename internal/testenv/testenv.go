// Package testenv starts the real backing services caasd's tests talk to:
// a redis-server process, an in-process Kafka-protocol broker (kfake) and
// an in-process MongoDB-wire server (FerretDB), each reached over TCP.
package testenv

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caasd/caasd/internal/config"
	"github.com/caasd/caasd/internal/embedded"
)

// JWTSecret is the secret of every test configuration.
const JWTSecret = "caasd-test-secret-0123456789"

// Env is one set of services for a test.
type Env struct {
	RedisURL  string
	Kafka     *embedded.Kafka
	Mongo     *embedded.Mongo
	MongoDir  string
	MongoAddr string
	redis     *exec.Cmd
}

// Start starts redis-server, kfake and FerretDB; they stop at cleanup.
func Start(t testing.TB) *Env {
	t.Helper()
	e := &Env{}
	e.RedisURL = StartRedis(t)
	k, err := embedded.StartKafka("", 0, 4, false)
	if err != nil {
		t.Fatalf("kafka: %v", err)
	}
	t.Cleanup(k.Close)
	e.Kafka = k
	e.MongoDir = t.TempDir()
	e.MongoAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	e.StartMongo(t)
	t.Cleanup(func() {
		if e.Mongo != nil {
			e.Mongo.Close()
		}
	})
	return e
}

// StartMongo (re)starts FerretDB on the same address and data directory.
func (e *Env) StartMongo(t testing.TB) {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		e.Mongo, err = embedded.StartMongo(e.MongoDir, e.MongoAddr, Logger(t, slog.LevelError))
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("mongo: %v", err)
}

// StopMongo stops FerretDB; clients see connection errors until StartMongo.
func (e *Env) StopMongo() {
	e.Mongo.Close()
	e.Mongo = nil
}

// Config returns a caasd configuration on these services; vars override
// environment variables.
func (e *Env) Config(t testing.TB, vars map[string]string) config.Config {
	t.Helper()
	env := map[string]string{
		"HTTP_ADDR":        "127.0.0.1:0",
		"JWT_SECRET":       JWTSecret,
		"REDIS_URL":        e.RedisURL,
		"KAFKA_BROKERS":    e.Kafka.Addrs()[0],
		"MONGO_URI":        "mongodb://" + e.MongoAddr + "/",
		"MONGO_DB":         "caas",
		"NODE_ID":          "test",
		"LOG_LEVEL":        "warn",
		"KAFKA_PARTITIONS": "4",
	}
	for k, v := range vars {
		env[k] = v
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// RedisClient is a client of the Redis at url, closed at the end of the
// test.
func RedisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// StartRedis runs a real redis-server on a free loopback port.
func StartRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (apt-get install -y redis-server): %v", err)
	}
	dir := t.TempDir()
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(t)
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("redis-server: %v", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if waitTCP(addr, 5*time.Second) {
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			return "redis://" + addr
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatalf("redis-server did not start")
	return ""
}

func waitTCP(addr string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Logger returns a logger writing level and above to stderr. It does not
// write to t.Log: services log after a test ends, which t.Log forbids.
func Logger(_ testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// TempDir is t.TempDir under a short path (sockets have length limits).
func TempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "caasd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return filepath.Clean(d)
}
