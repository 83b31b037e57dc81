package turn

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/coturntest"
	"github.com/caasd/caasd/internal/testenv"
)

const leakSecret = "Leaky-S3cret-Value-42"

// assertNoSecret fails if out contains leakSecret, raw or hex-encoded.
func assertNoSecret(t testing.TB, what, out string) {
	t.Helper()
	if strings.Contains(out, leakSecret) || strings.Contains(strings.ToLower(out), hex.EncodeToString([]byte(leakSecret))) {
		t.Fatalf("%s leaks the secret: %s", what, out)
	}
}

func TestSecretRedaction(t *testing.T) {
	s := Secret(leakSecret)
	if s.Reveal() != leakSecret {
		t.Fatal("Reveal lost the value")
	}
	c := ServerConfig{ID: "a", Host: "h", Port: 3478, Secret: s, PreviousSecret: s}
	cfg := Config{Servers: []ServerConfig{c}}
	values := map[string]any{"Secret": s, "*Secret": &s, "ServerConfig": c, "*ServerConfig": &c,
		"[]ServerConfig": []ServerConfig{c}, "Config": cfg, "map": map[string]Secret{"k": s}}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
			out := fmt.Sprintf(verb, v)
			assertNoSecret(t, name+" "+verb, out)
			if !strings.Contains(out, "[redacted]") {
				t.Errorf("%s %s = %q, want [redacted] in it", name, verb, out)
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		assertNoSecret(t, name+" JSON", string(b))
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("text", "v", v)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("json", "v", v)
		assertNoSecret(t, name+" slog", buf.String())
	}
	if got := fmt.Sprint(s); got != "[redacted]" {
		t.Fatalf("fmt.Sprint(secret) = %q", got)
	}
}

// TestNoSecretInLogsOrStatus runs real probes (against coturn and against
// a dead port) with debug logging captured, then greps everything the
// registry exposes for the secret.
func TestNoSecretInLogsOrStatus(t *testing.T) {
	port, _ := coturntest.Start(t, leakSecret, testRealm)
	var logs testenv.SyncBuffer
	live := ServerConfig{ID: "live", Host: "127.0.0.1", Port: port, Secret: leakSecret, PreviousSecret: leakSecret}
	dead := ServerConfig{ID: "dead", Host: "127.0.0.1", Port: testenv.FreePort(t), Secret: leakSecret}
	r, _ := newTestRegistry(t, Config{Servers: []ServerConfig{live, dead}, FailureThreshold: 1,
		ProbeTimeout: 300 * time.Millisecond}, &logs)
	waitFor(t, 5*time.Second, "probes on both servers", func() bool {
		return statusOf(t, r, "live").Healthy && statusOf(t, r, "dead").ConsecutiveFailures >= 2
	})
	// Rotation and removal are logged too.
	live.Secret = "another-secret"
	if err := r.Update(live); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove("dead"); err != nil {
		t.Fatal(err)
	}
	_ = r.Add(ServerConfig{ID: "bad", Host: "h", Port: 99999, Secret: leakSecret}) // error path

	out := logs.String()
	for _, want := range []string{"turn server healthy", "turn probe failed", "turn server updated", "turn server removed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q; captured:\n%s", want, out)
		}
	}
	assertNoSecret(t, "log output", out)
	assertNoSecret(t, "List JSON", string(mustJSON(t, r.List())))
	assertNoSecret(t, "List %+v", fmt.Sprintf("%+v %v %#v", r.List(), r.List(), r.List()))
	assertNoSecret(t, "config %+v", fmt.Sprintf("%+v %v %#v", live, dead, []ServerConfig{live, dead}))
	assertNoSecret(t, "config JSON", string(mustJSON(t, []ServerConfig{live, dead})))
}
