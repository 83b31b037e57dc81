package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsOnTheEmbeddedDefault(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	k, r, m := c.Embedded()
	if !k || !r || !m {
		t.Fatal("no service set: every service should be embedded")
	}
	if c.HTTPAddr != ":8080" || c.Kafka.MessageTopic != "chat.messages" || c.Rooms.StateTTL != 24*time.Hour ||
		c.Rooms.AuthzCacheTTL != 300*time.Second || c.Persistence.ConfirmationTimeout != 5*time.Second ||
		c.Persistence.BatchSize != 500 || c.Kafka.ProducerLinger != 2*time.Millisecond || c.Persistence.BehindWait != 2*time.Minute || c.TURN.CredentialTTL != 86400*time.Second || c.JWTSecret == "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestBadValuesNameTheirVariable(t *testing.T) {
	real := map[string]string{"KAFKA_BROKERS": "k:9092", "REDIS_URL": "redis://r:6379", "MONGO_URI": "mongodb://m:27017", "JWT_SECRET": "0123456789abcdef0123"}
	cases := []struct {
		name, key, value string
	}{
		{"port", "HTTP_ADDR", "8080"},
		{"number", "RATE_LIMIT_PER_MINUTE", "many"},
		{"range", "MESSAGE_PERSISTENCE_BATCH_SIZE", "0"},
		{"linger", "KAFKA_PRODUCER_LINGER_MS", "-1"},
		{"duration", "PERSISTENCE_CONFIRMATION_TIMEOUT_MS", "-5"},
		{"broker", "KAFKA_BROKERS", "kafka"},
		{"redis", "REDIS_URL", "http://r"},
		{"mongo", "MONGO_URI", "postgres://x"},
		{"secret", "JWT_SECRET", "short"},
		{"bool", "PERSISTER_ENABLED", "perhaps"},
		{"regexp", "PROHIBITED_PATTERNS", "(unclosed"},
		{"level", "LOG_LEVEL", "loud"},
		{"log repeats", "LOG_REPEAT_PER_S", "-1"},
		{"seed", "CLUSTER_SEEDS", "nohost"},
		{"lease", "ROOM_LEASE_TTL_MS", "100"},
		{"turn", "TURN_HOST", "turn.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range real {
				m[k] = v
			}
			m[tc.key] = tc.value
			_, err := FromEnv(env(m))
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.key, tc.value)
			}
			want := tc.key
			if tc.key == "TURN_HOST" {
				want = "TURN_SECRET"
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %s", err, want)
			}
		})
	}
}

func TestJWTSecretIsRequiredWithRealServices(t *testing.T) {
	_, err := FromEnv(env(map[string]string{"REDIS_URL": "redis://r:6379"}))
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "JWT_SECRET") {
		t.Fatalf("err = %v", err)
	}
}

// TestSeqRestoreFollowsTheStore: the seq restore is on with the embedded
// store and off with MONGO_URI, unless ROOM_SEQ_RESTORE says otherwise.
func TestSeqRestoreFollowsTheStore(t *testing.T) {
	for _, tc := range []struct {
		mongo, restore string
		want           bool
	}{
		{"", "", true},
		{"mongodb://m:27017", "", false},
		{"mongodb://m:27017", "true", true},
		{"", "false", false},
	} {
		c, err := FromEnv(env(map[string]string{"MONGO_URI": tc.mongo, "ROOM_SEQ_RESTORE": tc.restore, "JWT_SECRET": "0123456789abcdef0123"}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Rooms.SeqRestore != tc.want {
			t.Errorf("MONGO_URI=%q ROOM_SEQ_RESTORE=%q: restore %v, want %v", tc.mongo, tc.restore, c.Rooms.SeqRestore, tc.want)
		}
	}
}
