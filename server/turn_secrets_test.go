package server_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/server"
	"github.com/caasd/caasd/transport"
)

func TestTurnSecretsAppearInNoResponseAndNoLogLine(t *testing.T) {
	secrets := map[string]string{
		"legacy": "legacy-secret-5f1e", "listed": "listed-secret-9a2b", "down": "down-secret-77cd",
		"added": "added-secret-3e4f", "rotated": "rotated-secret-0d9c", "invalid": "invalid-secret-6b6b",
	}
	legacyPort, _ := startCoturn(t, secrets["legacy"])
	listedPort, _ := startCoturn(t, secrets["listed"])
	addedPort, _ := startCoturn(t, secrets["added"])
	downPort := freeUDPTCPPort(t) // nothing listens: its probes fail and are logged
	env := testenv.Start(t)
	logs := &logBuffer{}
	vars := map[string]string{
		"TURN_HOST": "127.0.0.1", "TURN_PORT": strconv.Itoa(legacyPort), "TURN_SECRET": secrets["legacy"],
		"TURN_SERVERS": fmt.Sprintf("id=listed,host=127.0.0.1,port=%d,secret=%s;id=down,host=127.0.0.1,port=%d,secret=%s",
			listedPort, secrets["listed"], downPort, secrets["down"]),
		"TURN_PROBE_INTERVAL_MS": "200", "TURN_PROBE_TIMEOUT_MS": "300", "TURN_FAILURE_THRESHOLD": "1", "LOG_LEVEL": "debug",
	}
	s := rtcNode(t, env, vars, logs)
	base, user, admin := "http://"+s.Addr(), testenv.Token(t, "alice", "acme"), testenv.Token(t, "root", "acme", "admin")

	var bodies []string
	call := func(want int, method, path, token string, body any) {
		t.Helper()
		bodies = append(bodies, string(testenv.MustHTTP(t, want, method, base+path, token, body)))
	}
	l := waitICE(t, s, user, 10*time.Second, "legacy and listed servers", func(l iceList) bool { return l.hasPort(legacyPort) && l.hasPort(listedPort) })
	if l.hasPort(downPort) {
		t.Fatal("a server without coturn is in the ICE list")
	}
	call(200, "GET", "/v1/webrtc/ice-servers", user, nil)
	call(201, "POST", "/v1/admin/turn/servers", admin, map[string]any{"id": "added", "host": "127.0.0.1", "port": addedPort, "secret": secrets["added"]})
	call(200, "PUT", "/v1/admin/turn/servers/added", admin, map[string]any{"host": "127.0.0.1", "port": addedPort, "secret": secrets["added"], "previous_secret": secrets["rotated"]})
	call(400, "POST", "/v1/admin/turn/servers", admin, map[string]any{"id": "bad", "host": "127.0.0.1", "port": 70000, "secret": secrets["invalid"]})
	call(400, "POST", "/v1/admin/turn/servers", admin, map[string]any{"id": "bad id!", "host": "x", "secret": secrets["invalid"]})
	call(400, "POST", "/v1/admin/turn/servers", admin, `{"id":"bad","secret":"`+secrets["invalid"]+`","unknown":1}`)
	call(200, "GET", "/v1/admin/turn/servers", admin, nil)
	call(200, "GET", "/metrics", "", nil)
	call(200, "GET", "/healthz", "", nil)
	waitICE(t, s, user, 5*time.Second, "the added server", func(l iceList) bool { return l.hasPort(addedPort) })
	call(200, "GET", "/v1/webrtc/ice-servers", user, nil)
	c := dialUser(t, s, "acme", "bob")
	c.Emit("webrtc:ice-servers", map[string]any{})
	bodies = append(bodies, string(c.Wait("webrtc:ice-servers", 10*time.Second, nil).Data))
	if !strings.Contains(bodies[len(bodies)-1], strconv.Itoa(addedPort)) {
		t.Fatalf("webrtc:ice-servers lacks the added server: %s", bodies[len(bodies)-1])
	}

	// A configuration error names the variable, not the secret.
	bad := env.Config(t, map[string]string{"TURN_SERVERS": "id=x,host=bad host,secret=" + secrets["invalid"]})
	_, err := server.Start(context.Background(), bad, debugLogger(logs))
	if err == nil || !strings.Contains(err.Error(), "TURN_SERVERS") {
		t.Fatalf("bad TURN_SERVERS: %v", err)
	}
	bodies = append(bodies, err.Error())

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "turn probe failed") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.Close(ctx, transport.CloseGoingAway) // shutdown logs count too
	out := logs.String()
	for _, want := range []string{"turn probe failed", "turn server added", "turn server updated", "caasd serving"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the log lacks %q; the capture does not work:\n%s", want, out)
		}
	}
	for name, secret := range secrets {
		for _, b := range bodies {
			if strings.Contains(b, secret) {
				t.Fatalf("the %s secret appears in a response: %s", name, b)
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, secret) {
				t.Fatalf("the %s secret appears in a log line: %s", name, line)
			}
		}
	}
	t.Logf("checked %d responses and %d log lines", len(bodies), strings.Count(out, "\n"))
}
