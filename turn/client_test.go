package turn

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

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
