package server_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/turn"
)

func TestTurnCredentialsFromTheAPIAllocateOnCoturn(t *testing.T) {
	const secret = "legacy-turn-secret-1"
	port, _ := startCoturn(t, secret)
	env := testenv.Start(t)
	s := node(t, env, map[string]string{
		"TURN_HOST": "127.0.0.1", "TURN_PORT": strconv.Itoa(port), "TURN_SECRET": secret,
		"TURN_PROBE_INTERVAL_MS": "200", "TURN_PROBE_TIMEOUT_MS": "1000",
	})
	alice := testenv.Token(t, "alice", "acme")
	l := waitICE(t, s, alice, 10*time.Second, "the legacy server healthy", func(l iceList) bool { return l.hasPort(port) })
	if len(l.ICEServers) != 2 || l.TTL != 86400 || l.ICEServers[0].Username != "" || !strings.HasPrefix(l.ICEServers[0].URLs[0], "stun:") {
		t.Fatalf("ICE list = %+v, want a STUN entry then a TURN entry, ttl 86400", l)
	}
	urls, username, credential := l.turnEntry(t, port)
	if len(urls) != 2 || !strings.HasSuffix(username, ":alice") {
		t.Fatalf("TURN entry %v %q", urls, username)
	}
	for _, u := range urls {
		if err := turnAllocate(t, u, username, credential); err != nil {
			t.Fatalf("allocate via %s with the API's credentials: %v", u, err)
		}
	}

	// The same list over the WebSocket.
	c := dialUser(t, s, "acme", "bob")
	c.Emit("webrtc:ice-servers", map[string]any{})
	var ws iceList
	if err := json.Unmarshal(c.Wait("webrtc:ice-servers", 10*time.Second, nil).Data, &ws); err != nil {
		t.Fatal(err)
	}
	wsURLs, wsUser, wsCred := ws.turnEntry(t, port)
	if !ws.hasPort(port) || !strings.HasSuffix(wsUser, ":bob") || len(wsURLs) != 2 {
		t.Fatalf("webrtc:ice-servers = %+v", ws)
	}
	if err := turnAllocate(t, wsURLs[0], wsUser, wsCred); err != nil {
		t.Fatalf("allocate with the WebSocket's credentials: %v", err)
	}

	// coturn refuses expired and forged credentials.
	expired := turn.NewCredentials(turn.Secret(secret), "alice", time.Hour, time.Now().Add(-2*time.Hour))
	forged := turn.NewCredentials(turn.Secret("not-the-secret"), "alice", time.Hour, time.Now())
	later := fmt.Sprintf("%d:alice", time.Now().Add(48*time.Hour).Unix()) // a longer life, the old password
	for name, cred := range map[string][2]string{
		"expired": {expired.Username, expired.Password}, "forged": {forged.Username, forged.Password}, "extended": {later, credential},
	} {
		for _, u := range urls {
			assertUnauthorized(t, name+" via "+u, turnAllocate(t, u, cred[0], cred[1]))
		}
	}
	if code, _ := testenv.HTTP(t, "GET", "http://"+s.Addr()+"/v1/webrtc/ice-servers", "", nil); code != 401 {
		t.Fatalf("ICE servers without a token: %d, want 401", code)
	}
	metrics := string(testenv.MustHTTP(t, 200, "GET", "http://"+s.Addr()+"/metrics", "", nil))
	for _, m := range []string{"turn_servers_total 1", "turn_servers_healthy 1", "turn_credentials_generated_total"} {
		if !strings.Contains(metrics, m) {
			t.Fatalf("metrics lack %q", m)
		}
	}
}

func TestTurnHealthAndAdminChangesShowInTheICEList(t *testing.T) {
	const secretA, secretB, secretC = "secret-of-a-1", "secret-of-b-2", "secret-of-c-3"
	portA, _ := startCoturn(t, secretA)
	portB, stopB := startCoturn(t, secretB)
	portC, _ := startCoturn(t, secretC)
	env := testenv.Start(t)
	const interval = 200 * time.Millisecond
	s := node(t, env, map[string]string{
		"TURN_SERVERS":           fmt.Sprintf("id=a,host=127.0.0.1,port=%d,secret=%s;id=b,host=127.0.0.1,port=%d,secret=%s", portA, secretA, portB, secretB),
		"TURN_PROBE_INTERVAL_MS": "200", "TURN_PROBE_TIMEOUT_MS": "500", "TURN_FAILURE_THRESHOLD": "2",
	})
	base, user, admin := "http://"+s.Addr(), testenv.Token(t, "u", "acme"), testenv.Token(t, "root", "acme", "admin")
	both := func(l iceList) bool { return l.hasPort(portA) && l.hasPort(portB) }
	waitICE(t, s, user, 10*time.Second, "a and b in the ICE list", both)

	stopB()
	stopped := time.Now()
	waitICE(t, s, user, 10*interval+2*time.Second, "b left out", func(l iceList) bool { return l.hasPort(portA) && !l.hasPort(portB) })
	t.Logf("stopped server left out after %v", time.Since(stopped).Round(time.Millisecond))
	runCoturn(t, secretB, portB)
	restarted := time.Now()
	waitICE(t, s, user, 10*interval+2*time.Second, "b back", both)
	t.Logf("restarted server back after %v", time.Since(restarted).Round(time.Millisecond))

	// Admin changes.
	add := map[string]any{"id": "c", "host": "127.0.0.1", "port": portC, "secret": secretC}
	for _, tok := range []string{user, ""} {
		if code, _ := testenv.HTTP(t, "POST", base+"/v1/admin/turn/servers", tok, add); code != map[string]int{user: 403, "": 401}[tok] {
			t.Fatalf("POST turn server with token %q: %d", tok, code)
		}
	}
	b := testenv.MustHTTP(t, 201, "POST", base+"/v1/admin/turn/servers", admin, add)
	if strings.Contains(string(b), secretC) || strings.Contains(string(b), `"secret"`) {
		t.Fatalf("POST answer shows the secret: %s", b)
	}
	testenv.MustHTTP(t, 409, "POST", base+"/v1/admin/turn/servers", admin, add)
	testenv.MustHTTP(t, 400, "POST", base+"/v1/admin/turn/servers", admin, map[string]any{"id": "d", "secret": "x"})
	l := waitICE(t, s, user, 5*time.Second, "c in the ICE list", func(l iceList) bool { return l.hasPort(portC) })
	urls, username, credential := l.turnEntry(t, portC)
	if err := turnAllocate(t, urls[0], username, credential); err != nil {
		t.Fatalf("allocate on the added server: %v", err)
	}
	testenv.MustHTTP(t, 204, "DELETE", base+"/v1/admin/turn/servers/b", admin, nil)
	testenv.MustHTTP(t, 404, "DELETE", base+"/v1/admin/turn/servers/b", admin, nil)
	if l, _ := getICE(t, s, user); l.hasPort(portB) || !l.hasPort(portA) || !l.hasPort(portC) {
		t.Fatalf("after removing b: %+v", l)
	}
	var listed struct {
		Servers []struct {
			ID      string `json:"id"`
			Healthy bool   `json:"healthy"`
		} `json:"servers"`
	}
	lb := testenv.MustHTTP(t, 200, "GET", base+"/v1/admin/turn/servers", admin, nil)
	if err := json.Unmarshal(lb, &listed); err != nil || len(listed.Servers) != 2 || listed.Servers[0].ID != "a" || listed.Servers[1].ID != "c" || !listed.Servers[1].Healthy {
		t.Fatalf("admin list = %s", lb)
	}
	testenv.MustHTTP(t, 403, "GET", base+"/v1/admin/turn/servers", user, nil)
	testenv.MustHTTP(t, 403, "DELETE", base+"/v1/admin/turn/servers/a", user, nil)
}
