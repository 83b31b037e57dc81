package turn

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caasd/caasd/internal/testenv"
)

func TestNewRegistryValidation(t *testing.T) {
	good := ServerConfig{ID: "a", Host: "h", Port: 3478, Secret: "s"}
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"negative ttl", Config{CredentialTTL: -1}, ErrInvalidConfig},
		{"negative interval", Config{ProbeInterval: -1}, ErrInvalidConfig},
		{"negative threshold", Config{FailureThreshold: -1}, ErrInvalidConfig},
		{"invalid server", Config{Servers: []ServerConfig{{ID: "a", Host: "h", Port: 3478}}}, ErrInvalidConfig},
		{"duplicate server", Config{Servers: []ServerConfig{good, good}}, ErrExists},
		{"too many servers", Config{MaxServers: 1, Servers: []ServerConfig{good, {ID: "b", Host: "h", Port: 1, Secret: "s"}}}, ErrTooManyServers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewRegistry(tt.cfg, nil, nil); !errors.Is(err, tt.want) {
				t.Fatalf("NewRegistry error = %v, want %v", err, tt.want)
			}
		})
	}

	preg := prometheus.NewRegistry()
	if _, err := NewRegistry(Config{}, nil, preg); err != nil {
		t.Fatal(err)
	}
	var are prometheus.AlreadyRegisteredError
	if _, err := NewRegistry(Config{}, nil, preg); !errors.As(err, &are) {
		t.Fatalf("second registration: %v, want AlreadyRegisteredError", err)
	}
}

// markHealthy sets a server healthy without a probe, for unit tests.
func markHealthy(r *Registry, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.servers[r.indexLocked(id)].healthy = true
	r.updateGaugesLocked()
}

func TestICEServersTTLAndOrder(t *testing.T) {
	now := time.Unix(1700000000, 0)
	preg := prometheus.NewRegistry()
	r, err := NewRegistry(Config{
		CredentialTTL: 2 * time.Hour,
		Now:           func() time.Time { return now },
		Servers: []ServerConfig{
			{ID: "a", Host: "10.0.0.1", Port: 3478, Secret: "sa"},
			{ID: "b", Host: "10.0.0.2", Port: 3478, Secret: "sb"},
			{ID: "c", Host: "10.0.0.3", Port: 3478, TLSPort: 5349, Secret: "sc", Transports: []Transport{TransportUDP, TransportTLS}},
		},
	}, nil, preg)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(mustJSON(t, r.ICEServers("u"))); got != `{"ice_servers":[],"ttl":7200}` {
		t.Fatalf("no healthy servers: %s", got)
	}
	markHealthy(r, "a")
	markHealthy(r, "c")
	ice := r.ICEServers("dave")
	want := `{"ice_servers":[` +
		`{"urls":["stun:10.0.0.1:3478"]},{"urls":["stun:10.0.0.3:3478"]},` +
		`{"urls":["turn:10.0.0.1:3478?transport=udp","turn:10.0.0.1:3478?transport=tcp"],"username":"1700007200:dave","credential":"` +
		credentialPassword("sa", "1700007200:dave") + `"},` +
		`{"urls":["turn:10.0.0.3:3478?transport=udp","turns:10.0.0.3:5349?transport=tcp"],"username":"1700007200:dave","credential":"` +
		credentialPassword("sc", "1700007200:dave") + `"}],"ttl":7200}`
	if got := string(mustJSON(t, ice)); got != want {
		t.Fatalf("ICEServers JSON =\n%s\nwant\n%s", got, want)
	}
	if got := gatherValue(t, preg, "turn_credentials_generated_total"); got != 2 {
		t.Fatalf("turn_credentials_generated_total = %v, want 2", got)
	}
	assertGauges(t, preg, 3, 2)
}

func TestUpdateRotatesSecret(t *testing.T) {
	r, err := NewRegistry(Config{Servers: []ServerConfig{{ID: "a", Host: "h", Port: 3478, Secret: "old"}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	markHealthy(r, "a")
	if err := r.Update(ServerConfig{ID: "a", Host: "h", Port: 3478, Secret: "new", PreviousSecret: "old"}); err != nil {
		t.Fatal(err)
	}
	st := statusOf(t, r, "a")
	if !st.Healthy || !st.HasPreviousSecret {
		t.Fatalf("status after rotation = %+v", st)
	}
	e := r.ICEServers("u").ICEServers[1]
	if e.Credential != credentialPassword("new", e.Username) {
		t.Fatal("credentials not minted with the current secret")
	}
	if err := r.Update(ServerConfig{ID: "a", Host: "h", Port: 3479, Secret: "new"}); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, r, "a"); st.Healthy {
		t.Fatalf("moved server kept its health: %+v", st)
	}
	if err := r.Update(ServerConfig{ID: "zz", Host: "h", Port: 1, Secret: "s"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update unknown: %v, want ErrNotFound", err)
	}
	var fe *FieldError
	if err := r.Add(ServerConfig{ID: "b", Host: "h", Port: 1}); !errors.As(err, &fe) || fe.Field != "secret" {
		t.Fatalf("Add without secret: %v", err)
	}
}

func TestRunStopsInFlightProbes(t *testing.T) {
	// Nothing listens on the port: the UDP probe would wait for its 30s timeout.
	r, err := NewRegistry(Config{
		ProbeTimeout: 30 * time.Second,
		Servers:      []ServerConfig{{ID: "a", Host: "127.0.0.1", Port: testenv.FreePort(t), Secret: "s", Transports: []Transport{TransportUDP}}},
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	time.Sleep(300 * time.Millisecond)
	// A second Run while the first is active returns at once.
	second := make(chan struct{})
	go func() { r.Run(context.Background()); close(second) }()
	select {
	case <-second:
	case <-time.After(2 * time.Second):
		t.Fatal("second Run did not return")
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Run took %v to return", d)
	}
	if st := statusOf(t, r, "a"); st.Healthy || !st.LastProbe.IsZero() {
		t.Fatalf("a cancelled probe must not count: %+v", st)
	}
}

func TestListJSONHasNoSecretFields(t *testing.T) {
	r, err := NewRegistry(Config{Servers: []ServerConfig{{ID: "a", Host: "h", Port: 3478, TLSPort: 5349, Secret: "s1", PreviousSecret: "s0"}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(mustJSON(t, r.List()), &got); err != nil {
		t.Fatal(err)
	}
	for k := range got[0] {
		if strings.Contains(k, "secret") && k != "has_previous_secret" {
			t.Fatalf("List JSON has field %q", k)
		}
	}
	if got[0]["has_previous_secret"] != true || got[0]["healthy"] != false || got[0]["tls_port"] != float64(5349) {
		t.Fatalf("List JSON = %v", got[0])
	}
}
