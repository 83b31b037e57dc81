package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/server"
)

// rtcNode is node() with every log line, at debug level, written to logs.
func rtcNode(t testing.TB, env *testenv.Env, vars map[string]string, logs io.Writer) *server.Server {
	t.Helper()
	return nodeWithLogger(t, env, vars, debugLogger(logs))
}

// debugLogger writes every log line, at debug level, to w as JSON.
func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// iceList is the answer of GET /v1/webrtc/ice-servers and of the
// webrtc:ice-servers event.
type iceList struct {
	ICEServers []struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	} `json:"ice_servers"`
	TTL int64 `json:"ttl"`
}

// hasPort reports whether the list has a STUN entry for 127.0.0.1:port.
func (l iceList) hasPort(port int) bool {
	want := "stun:127.0.0.1:" + strconv.Itoa(port)
	for _, s := range l.ICEServers {
		for _, u := range s.URLs {
			if u == want {
				return true
			}
		}
	}
	return false
}

// turnEntry returns the TURN entry of the server on port.
func (l iceList) turnEntry(t testing.TB, port int) (urls []string, username, credential string) {
	t.Helper()
	for _, s := range l.ICEServers {
		if s.Username != "" && strings.Contains(s.URLs[0], "127.0.0.1:"+strconv.Itoa(port)+"?") {
			return s.URLs, s.Username, s.Credential
		}
	}
	t.Fatalf("no TURN entry for port %d in %+v", port, l)
	return nil, "", ""
}

// getICE fetches the ICE servers over HTTP for token.
func getICE(t testing.TB, s *server.Server, token string) (iceList, []byte) {
	t.Helper()
	b := testenv.MustHTTP(t, 200, "GET", "http://"+s.Addr()+"/v1/webrtc/ice-servers", token, nil)
	var l iceList
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("ice servers %s: %v", b, err)
	}
	return l, b
}

// waitICE polls the HTTP ICE list until cond holds.
func waitICE(t testing.TB, s *server.Server, token string, d time.Duration, what string, cond func(iceList) bool) iceList {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		l, _ := getICE(t, s, token)
		if cond(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last list %+v", d, what, l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recEvent is a record of the recording topic, as the test reads it.
type recEvent struct {
	Type        string `json:"type"`
	RecordingID string `json:"recording_id"`
	TenantID    string `json:"tenant_id"`
	Status      string `json:"status"`
	UserID      string `json:"user_id"`
	Consent     string `json:"consent"`
	Reason      string `json:"reason"`
	Storage     *struct {
		Location string `json:"location"`
	} `json:"storage"`
	Participants []json.RawMessage `json:"participants"`
}

// recordingEvents reads the recording topic with sarama until it holds at
// least want events of recording id (in order) or d passes.
func recordingEvents(t testing.TB, env *testenv.Env, id string, want int, d time.Duration) []recEvent {
	t.Helper()
	var out []recEvent
	waitTopic(t, env, "webrtc.recording.events", d, func(recs []*sarama.ConsumerMessage) bool {
		out = out[:0]
		for _, r := range recs {
			var e recEvent
			if err := json.Unmarshal(r.Value, &e); err != nil {
				t.Fatalf("recording event %q: %v", r.Value, err)
			}
			if e.RecordingID == id {
				out = append(out, e)
			}
		}
		return len(out) >= want
	})
	return out
}

// eventTypes lists the types of events, leaving out skip.
func eventTypes(evs []recEvent, skip string) []string {
	var out []string
	for _, e := range evs {
		if e.Type != skip {
			out = append(out, e.Type)
		}
	}
	return out
}

// recordingDoc reads a call_recordings document through mongo-driver.
func recordingDoc(t testing.TB, env *testenv.Env, tenant, id string) (persistence.Recording, bson.M) {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + env.MongoAddr + "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	var raw bson.M
	err = client.Database("caas").Collection("call_recordings").FindOne(context.Background(), bson.D{{Key: "_id", Value: tenant + "/" + id}}).Decode(&raw)
	if err != nil {
		t.Fatalf("recording %s/%s in MongoDB: %v", tenant, id, err)
	}
	b, _ := bson.Marshal(raw)
	var r persistence.Recording
	if err := bson.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r, raw
}

// consentOf returns the consent of user in r.
func consentOf(r persistence.Recording, user string) persistence.RecordingParticipant {
	for _, p := range r.Participants {
		if p.UserID == user {
			return p
		}
	}
	return persistence.RecordingParticipant{}
}

// dialUser connects user of tenant over the native WebSocket protocol.
func dialUser(t testing.TB, s *server.Server, tenant, user string) *testenv.Client {
	t.Helper()
	return testenv.Dial(t, s.Addr(), testenv.Token(t, user, tenant), "")
}

// field returns a predicate on one data field of an event.
func field(name, value string) func(testenv.Event) bool {
	return func(e testenv.Event) bool { return e.Field(name) == value }
}

// startCall starts call id in conv with the first client and has the
// others join (see joinCall).
func startCall(t testing.TB, conv, id string, users []string, cs ...*testenv.Client) {
	t.Helper()
	cs[0].Emit("call:start", map[string]any{"conversation_id": conv, "call_id": id, "media": "audio"})
	cs[0].Wait("call:started", 10*time.Second, field("call_id", id))
	joinCall(t, id, users, cs...)
}

// joinCall has cs[1:] (users[1:]) join call id, where cs[0] is; each join
// is seen by everyone in the call and lists everyone.
func joinCall(t testing.TB, id string, users []string, cs ...*testenv.Client) {
	t.Helper()
	for i, c := range cs[1:] {
		c.Emit("call:join", map[string]any{"call_id": id})
		for _, o := range cs[:i+2] {
			e := o.Wait("call:participant_joined", 10*time.Second, func(e testenv.Event) bool {
				return e.Field("call_id") == id && e.Field("user_id") == users[i+1]
			})
			var ps []struct {
				UserID string `json:"user_id"`
			}
			if err := json.Unmarshal([]byte(e.Field("participants")), &ps); err != nil || len(ps) != i+2 {
				t.Fatalf("participant_joined %s: want %d participants", e.Data, i+2)
			}
		}
	}
}

// requestRecording has c ask for a recording and waits until every client
// is asked for consent; it returns the recording id.
func requestRecording(t testing.TB, id string, c *testenv.Client, cs ...*testenv.Client) string {
	t.Helper()
	c.Emit("call:recording:request", map[string]any{"call_id": id})
	rec := ""
	for _, o := range cs {
		e := o.Wait("call:recording:consent_requested", 10*time.Second, field("call_id", id))
		if rec == "" {
			rec = e.Field("recording_id")
		}
		if e.Field("recording_id") != rec || rec == "" {
			t.Fatalf("consent_requested %s, want recording %q", e.Data, rec)
		}
	}
	return rec
}

// consent answers a consent request.
func consent(c *testenv.Client, call, rec string, granted bool) {
	c.Emit("call:recording:consent", map[string]any{"call_id": call, "recording_id": rec, "granted": granted})
}
