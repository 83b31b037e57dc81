package turn

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// testAllocate connects to a turn: or turns: URL as a WebRTC client would,
// allocates a relay with the given credentials and, if that works, checks
// that data flows both ways between the relay and a local UDP peer.
func testAllocate(t testing.TB, rawURL, username, credential string) error {
	t.Helper()
	scheme, rest, _ := strings.Cut(rawURL, ":")
	hostport, query, _ := strings.Cut(rest, "?")
	transport := strings.TrimPrefix(query, "transport=")

	var conn net.PacketConn
	switch {
	case scheme == "turn" && transport == "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	case scheme == "turn" && transport == "tcp":
		c, err := net.DialTimeout("tcp", hostport, 2*time.Second)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		conn = pionturn.NewSTUNConn(c)
	case scheme == "turns" && transport == "tcp":
		d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed test certificate
		c, err := d.DialContext(context.Background(), "tcp", hostport)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		conn = pionturn.NewSTUNConn(c)
	default:
		t.Fatalf("unexpected URL %q", rawURL)
	}
	defer func() { _ = conn.Close() }()

	client, err := pionturn.NewClient(&pionturn.ClientConfig{
		TURNServerAddr: hostport,
		Username:       username,
		Password:       credential,
		Conn:           conn,
		LoggerFactory:  &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := client.Allocate()
	if err != nil {
		return err
	}
	defer func() { _ = relay.Close() }()

	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = peer.Close() }()
	// Payloads of 9+ bytes: pion's STUNConn (TCP/TLS) treats a ChannelData
	// frame shorter than 9 bytes as incomplete and waits forever.
	const ping, pong = "ping from client via relay", "pong from peer via relay"
	if _, err := relay.WriteTo([]byte(ping), peer.LocalAddr()); err != nil {
		t.Fatalf("relay write: %v", err)
	}
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != ping {
		t.Fatalf("peer read via relay: %q, %v", buf[:n], err)
	}
	if from.String() != relay.LocalAddr().String() {
		t.Fatalf("peer got data from %v, want relay address %v", from, relay.LocalAddr())
	}
	if _, err := peer.WriteTo([]byte(pong), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err = relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != pong {
		t.Fatalf("relay read from peer: %q, %v", buf[:n], err)
	}
	return nil
}

// newTestRegistry builds a registry with fast probes and runs it until the
// test ends. Logs go to logs (if non-nil) at debug level, as JSON.
func newTestRegistry(t testing.TB, cfg Config, logs io.Writer) (*Registry, *prometheus.Registry) {
	t.Helper()
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = 200 * time.Millisecond
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = 700 * time.Millisecond
	}
	if cfg.FailureThreshold == 0 {
		cfg.FailureThreshold = 2
	}
	var logger *slog.Logger
	if logs != nil {
		logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	preg := prometheus.NewRegistry()
	r, err := NewRegistry(cfg, logger, preg)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancellation")
		}
	})
	return r, preg
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// iceHas reports whether the ICE list has a STUN entry for 127.0.0.1:port.
func iceHas(ice ICEServers, port int) bool {
	want := fmt.Sprintf("stun:127.0.0.1:%d", port)
	for _, s := range ice.ICEServers {
		for _, u := range s.URLs {
			if u == want {
				return true
			}
		}
	}
	return false
}

// statusOf returns the status of server id.
func statusOf(t testing.TB, r *Registry, id string) ServerStatus {
	t.Helper()
	for _, s := range r.List() {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("server %q not listed", id)
	return ServerStatus{}
}

// mustJSON marshals v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
