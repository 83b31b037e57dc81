package turn

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/caasd/caasd/internal/coturntest"
	"github.com/caasd/caasd/internal/testenv"
)

const testRealm = "caas.local"

func TestICEServersAllocateAgainstCoturn(t *testing.T) {
	const secret = "coturn-secret-1"
	port, _ := coturntest.Start(t, secret, testRealm)
	r, _ := newTestRegistry(t, Config{Servers: []ServerConfig{{
		ID: "a", Host: "127.0.0.1", Port: port, Realm: testRealm, Secret: secret,
	}}}, nil)
	waitFor(t, 5*time.Second, "server a healthy", func() bool { return statusOf(t, r, "a").Healthy })

	ice := r.ICEServers("alice")
	var shape struct {
		ICEServers []map[string]any `json:"ice_servers"`
		TTL        int64            `json:"ttl"`
	}
	if err := json.Unmarshal(mustJSON(t, ice), &shape); err != nil {
		t.Fatal(err)
	}
	if len(shape.ICEServers) != 2 || shape.TTL != 86400 {
		t.Fatalf("ICE JSON = %s", mustJSON(t, ice))
	}
	if _, ok := shape.ICEServers[0]["username"]; ok {
		t.Fatalf("first entry should be a bare STUN entry: %v", shape.ICEServers[0])
	}
	stunEntry, turnEntry := ice.ICEServers[0], ice.ICEServers[1]
	if len(stunEntry.URLs) != 1 || !strings.HasPrefix(stunEntry.URLs[0], "stun:") {
		t.Fatalf("STUN entry = %+v", stunEntry)
	}
	if len(turnEntry.URLs) != 2 || turnEntry.Username == "" || turnEntry.Credential == "" ||
		!strings.HasSuffix(turnEntry.Username, ":alice") {
		t.Fatalf("TURN entry = %+v", turnEntry)
	}
	for _, u := range turnEntry.URLs {
		if err := coturntest.Allocate(t, u, turnEntry.Username, turnEntry.Credential); err != nil {
			t.Fatalf("allocate via %s with ICEServers credentials: %v", u, err)
		}
	}

	expired := NewCredentials(secret, "alice", time.Hour, time.Now().Add(-2*time.Hour))
	forged := NewCredentials("not-the-secret", "alice", time.Hour, time.Now())
	for name, cred := range map[string]Credentials{"expired": expired, "forged": forged} {
		for _, u := range turnEntry.URLs {
			err := coturntest.Allocate(t, u, cred.Username, cred.Password)
			assertUnauthorized(t, name+" via "+u, err)
		}
	}
}

// assertUnauthorized checks that err is coturn's 401 answer, as pion reports it.
func assertUnauthorized(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: allocate succeeded, want 401", what)
	}
	var te *stun.TurnError
	if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeUnauthorized {
		t.Fatalf("%s: error %v (%T), want a *stun.TurnError with code 401", what, err, err)
	}
	if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("%s: error %q does not mention 401 Unauthorized", what, err)
	}
}

func TestUnhealthyServerLeftOutAndBroughtBack(t *testing.T) {
	const secretA, secretB = "secret-of-a", "secret-of-b"
	portA, _ := coturntest.Start(t, secretA, testRealm)
	portB, stopB := coturntest.Start(t, secretB, testRealm)
	const interval = 200 * time.Millisecond
	r, preg := newTestRegistry(t, Config{
		ProbeInterval:    interval,
		ProbeTimeout:     500 * time.Millisecond,
		FailureThreshold: 2,
		Servers: []ServerConfig{
			{ID: "a", Host: "127.0.0.1", Port: portA, Secret: secretA},
			{ID: "b", Host: "127.0.0.1", Port: portB, Secret: secretB},
		},
	}, nil)
	both := func() bool { ice := r.ICEServers("u"); return iceHas(ice, portA) && iceHas(ice, portB) }
	waitFor(t, 5*time.Second, "both servers in the ICE list", both)
	assertGauges(t, preg, 2, 2)

	// Each TURN entry is signed with its own server's secret.
	ice := r.ICEServers("bob")
	if len(ice.ICEServers) != 4 {
		t.Fatalf("want 2 STUN + 2 TURN entries, got %+v", ice.ICEServers)
	}
	for i, secret := range []Secret{secretA, secretB} {
		e := ice.ICEServers[2+i]
		if want := credentialPassword(secret, e.Username); e.Credential != want {
			t.Fatalf("entry %d credential not signed with its server's secret", i)
		}
		if err := coturntest.Allocate(t, e.URLs[0], e.Username, e.Credential); err != nil {
			t.Fatalf("allocate on server %d: %v", i, err)
		}
	}

	stopB()
	stoppedAt := time.Now()
	waitFor(t, 10*interval+2*time.Second, "b left out of the ICE list", func() bool {
		ice := r.ICEServers("u")
		return iceHas(ice, portA) && !iceHas(ice, portB)
	})
	t.Logf("stopped server left out after %v", time.Since(stoppedAt).Round(time.Millisecond))
	st := statusOf(t, r, "b")
	if st.Healthy || st.ConsecutiveFailures < 2 || st.LastError == "" || st.LastSuccess.IsZero() ||
		!st.LastProbe.After(st.LastSuccess) {
		t.Fatalf("status of stopped server = %+v", st)
	}
	assertGauges(t, preg, 2, 1)
	if sa := statusOf(t, r, "a"); !sa.Healthy || sa.ConsecutiveFailures != 0 {
		t.Fatalf("status of running server = %+v", sa)
	}

	coturntest.StartOnPort(t, secretB, testRealm, portB)
	restartedAt := time.Now()
	waitFor(t, 10*interval+2*time.Second, "b back in the ICE list", both)
	t.Logf("restarted server back after %v", time.Since(restartedAt).Round(time.Millisecond))
	if st := statusOf(t, r, "b"); !st.Healthy || st.ConsecutiveFailures != 0 || st.LastError != "" {
		t.Fatalf("status of restarted server = %+v", st)
	}
	assertGauges(t, preg, 2, 2)
}

func TestAddAndRemove(t *testing.T) {
	const secret = "add-remove-secret"
	port, _ := coturntest.Start(t, secret, testRealm)
	r, preg := newTestRegistry(t, Config{ProbeInterval: 30 * time.Second}, nil) // only the probe on Add can help
	if ice := r.ICEServers("u"); len(ice.ICEServers) != 0 {
		t.Fatalf("empty registry gave %+v", ice)
	}

	c := ServerConfig{ID: "new", Host: "127.0.0.1", Port: port, Secret: secret}
	if err := r.Add(c); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(c); !errors.Is(err, ErrExists) {
		t.Fatalf("second Add: %v, want ErrExists", err)
	}
	waitFor(t, 3*time.Second, "added server in the ICE list", func() bool { return iceHas(r.ICEServers("u"), port) })
	assertGauges(t, preg, 1, 1)

	// A server nobody listens on is listed but never offered.
	deadPort := testenv.FreePort(t)
	if err := r.Add(ServerConfig{ID: "dead", Host: "127.0.0.1", Port: deadPort, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "dead server probed", func() bool { return !statusOf(t, r, "dead").LastProbe.IsZero() })
	if st := statusOf(t, r, "dead"); st.Healthy || st.LastError == "" || iceHas(r.ICEServers("u"), deadPort) {
		t.Fatalf("dead server status = %+v", st)
	}
	t.Logf("dead server error: %s", statusOf(t, r, "dead").LastError)
	assertGauges(t, preg, 2, 1)

	if err := r.Remove("new"); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove("new"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove: %v, want ErrNotFound", err)
	}
	if ice := r.ICEServers("u"); iceHas(ice, port) || len(ice.ICEServers) != 0 {
		t.Fatalf("removed server still offered: %+v", ice)
	}
	if got := len(r.List()); got != 1 {
		t.Fatalf("List has %d servers, want 1", got)
	}
	assertGauges(t, preg, 1, 0)
}

func TestTLSProbeAndTurnsURL(t *testing.T) {
	const secret = "tls-secret"
	port, tlsPort, _ := coturntest.StartTLS(t, secret, testRealm)
	c := ServerConfig{ID: "tls", Host: "127.0.0.1", Port: port, TLSPort: tlsPort, Secret: secret,
		Transports: []Transport{TransportUDP, TransportTCP, TransportTLS}}

	// With certificate verification the self-signed certificate fails the probe.
	strict, _ := newTestRegistry(t, Config{Servers: []ServerConfig{c}}, nil)
	waitFor(t, 3*time.Second, "strict probe result", func() bool { return !statusOf(t, strict, "tls").LastProbe.IsZero() })
	if st := statusOf(t, strict, "tls"); st.Healthy || !strings.Contains(st.LastError, "tls:") ||
		!strings.Contains(st.LastError, "certificate") {
		t.Fatalf("strict TLS probe status = %+v", st)
	}

	r, _ := newTestRegistry(t, Config{Servers: []ServerConfig{c}, ProbeInsecureSkipVerify: true}, nil)
	waitFor(t, 3*time.Second, "TLS server healthy", func() bool { return statusOf(t, r, "tls").Healthy })
	e := r.ICEServers("carol").ICEServers[1]
	if len(e.URLs) != 3 || !strings.HasPrefix(e.URLs[2], "turns:") {
		t.Fatalf("TURN entry = %+v", e)
	}
	if err := coturntest.Allocate(t, e.URLs[2], e.Username, e.Credential); err != nil {
		t.Fatalf("allocate via %s: %v", e.URLs[2], err)
	}
	forged := NewCredentials("wrong", "carol", time.Hour, time.Now())
	assertUnauthorized(t, "forged via turns", coturntest.Allocate(t, e.URLs[2], forged.Username, forged.Password))
}
