package server_test

import (
	"slices"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/persistence"
)

// TestRecordingConsent runs the consent rules through real WebSocket
// clients and checks what MongoDB and the Kafka topic show of each step.
func TestRecordingConsent(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"CALL_CONSENT_TIMEOUT_MS": "1500"})
	conversation(t, s, "acme", "conv-rec", "alice", "bob", "carol")
	users := []string{"alice", "bob", "carol"}
	three := func(t *testing.T, id string) []*testenv.Client {
		cs := []*testenv.Client{dialUser(t, s, "acme", "alice"), dialUser(t, s, "acme", "bob"), dialUser(t, s, "acme", "carol")}
		startCall(t, "conv-rec", id, users, cs...)
		return cs
	}
	waitAll := func(t *testing.T, cs []*testenv.Client, name, rec string) []testenv.Event {
		t.Helper()
		var out []testenv.Event
		for _, c := range cs {
			out = append(out, c.Wait(name, 10*time.Second, field("recording_id", rec)))
		}
		return out
	}
	checkEvents := func(t *testing.T, rec string, want ...string) []recEvent {
		t.Helper()
		evs := recordingEvents(t, env, rec, len(want), 10*time.Second)
		if got := eventTypes(evs, ""); !slices.Equal(got, want) {
			t.Fatalf("Kafka events of %s: %v, want %v", rec, got, want)
		}
		for _, e := range evs {
			if e.TenantID != "acme" {
				t.Fatalf("event %+v has the wrong tenant", e)
			}
		}
		return evs
	}

	t.Run("starts only when all three consent", func(t *testing.T) {
		cs := three(t, "call-all")
		alice, bob, carol := cs[0], cs[1], cs[2]
		rec := requestRecording(t, "call-all", alice, cs...)
		doc, _ := recordingDoc(t, env, "acme", rec)
		if doc.Status != "requested" || consentOf(doc, "alice").Consent != "granted" || consentOf(doc, "bob").Consent != "pending" ||
			doc.CallID != "call-all" || doc.ConversationID != "conv-rec" || doc.RequestedBy != "alice" {
			t.Fatalf("requested recording in MongoDB: %+v", doc)
		}
		consent(bob, "call-all", rec, true)
		consent(alice, "call-all", rec, true) // asking was consenting already: harmless
		time.Sleep(300 * time.Millisecond)
		for _, c := range cs {
			if c.Count("call:recording:started") != 0 {
				t.Fatal("recording started before carol consented")
			}
		}
		consent(carol, "call-all", rec, true)
		for _, e := range waitAll(t, cs, "call:recording:started", rec) {
			if e.Field("participants") != `["alice","bob","carol"]` {
				t.Fatalf("recording:started = %s", e.Data)
			}
		}
		bob.Emit("call:recording:quality", map[string]any{"call_id": "call-all", "recording_id": rec, "bitrate_kbps": 1200, "packet_loss": 0.5, "jitter_ms": 12})
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if doc, _ := recordingDoc(t, env, "acme", rec); doc.Quality != nil && doc.Quality.Samples == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the quality report did not reach MongoDB")
			}
		}
		alice.Emit("call:recording:stop", map[string]any{"call_id": "call-all", "recording_id": rec})
		for _, e := range waitAll(t, cs, "call:recording:stopped", rec) {
			if e.Field("reason") != "stopped" || e.Field("user_id") != "alice" {
				t.Fatalf("recording:stopped = %s", e.Data)
			}
		}
		evs := checkEvents(t, rec, "recording.requested", "recording.consent", "recording.consent", "recording.started", "recording.quality", "recording.stopped")
		if evs[1].UserID != "bob" || evs[2].UserID != "carol" || evs[2].Consent != "granted" || evs[5].Status != "stopped" {
			t.Fatalf("events %+v", evs)
		}
		doc, _ = recordingDoc(t, env, "acme", rec)
		if doc.Status != "stopped" || doc.StartedAt == nil || doc.StoppedAt == nil || doc.DurationMs <= 0 || doc.EndedBy != "alice" ||
			doc.Quality == nil || doc.Quality.Samples != 1 || doc.Quality.BitrateKbps != 1200 {
			t.Fatalf("stopped recording in MongoDB: %+v", doc)
		}
		for _, u := range users {
			if p := consentOf(doc, u); p.Consent != "granted" || p.ConsentAt == nil {
				t.Fatalf("consent of %s: %+v", u, p)
			}
		}
	})

	t.Run("one refusal rejects it", func(t *testing.T) {
		cs := three(t, "call-refuse")
		rec := requestRecording(t, "call-refuse", cs[0], cs...)
		consent(cs[1], "call-refuse", rec, false)
		for _, e := range waitAll(t, cs, "call:recording:rejected", rec) {
			if e.Field("reason") != "consent_refused" || e.Field("user_id") != "bob" {
				t.Fatalf("recording:rejected = %s", e.Data)
			}
		}
		checkEvents(t, rec, "recording.requested", "recording.consent", "recording.rejected")
		doc, _ := recordingDoc(t, env, "acme", rec)
		if doc.Status != "rejected" || doc.Reason != "consent_refused" || consentOf(doc, "bob").Consent != "refused" || doc.StartedAt != nil {
			t.Fatalf("rejected recording in MongoDB: %+v", doc)
		}
	})

	t.Run("the timeout rejects it", func(t *testing.T) {
		cs := three(t, "call-timeout")
		asked := time.Now()
		rec := requestRecording(t, "call-timeout", cs[0], cs...)
		consent(cs[1], "call-timeout", rec, true)
		for _, e := range waitAll(t, cs, "call:recording:rejected", rec) {
			if e.Field("reason") != "consent_timeout" {
				t.Fatalf("recording:rejected = %s", e.Data)
			}
		}
		if d := time.Since(asked); d < 1400*time.Millisecond || d > 5*time.Second {
			t.Fatalf("rejected after %v; the timeout is 1.5 s", d)
		}
		checkEvents(t, rec, "recording.requested", "recording.consent", "recording.rejected")
		doc, _ := recordingDoc(t, env, "acme", rec)
		if doc.Status != "rejected" || doc.Reason != "consent_timeout" || consentOf(doc, "carol").Consent != "timeout" || consentOf(doc, "bob").Consent != "granted" {
			t.Fatalf("timed out recording in MongoDB: %+v", doc)
		}
	})

	// A participant joining a running recording must consent in time.
	lateJoiner := []struct {
		name, call string
		answer     func(c *testenv.Client, call, rec string)
		reason     string
		events     []string
	}{
		{"a late joiner who refuses stops it", "call-late-no", func(c *testenv.Client, call, rec string) { consent(c, call, rec, false) }, "consent_refused",
			[]string{"recording.requested", "recording.consent", "recording.started", "recording.participant_added", "recording.consent", "recording.stopped"}},
		{"a late joiner who stays silent stops it", "call-late-silent", func(*testenv.Client, string, string) {}, "consent_timeout",
			[]string{"recording.requested", "recording.consent", "recording.started", "recording.participant_added", "recording.stopped"}},
		{"a late joiner who consents keeps it", "call-late-yes", func(c *testenv.Client, call, rec string) { consent(c, call, rec, true) }, "",
			[]string{"recording.requested", "recording.consent", "recording.started", "recording.participant_added", "recording.consent"}},
	}
	for _, tc := range lateJoiner {
		t.Run(tc.name, func(t *testing.T) {
			alice, bob := dialUser(t, s, "acme", "alice"), dialUser(t, s, "acme", "bob")
			startCall(t, "conv-rec", tc.call, users[:2], alice, bob)
			rec := requestRecording(t, tc.call, alice, alice, bob)
			consent(bob, tc.call, rec, true)
			waitAll(t, []*testenv.Client{alice, bob}, "call:recording:started", rec)
			carol := dialUser(t, s, "acme", "carol")
			carol.Emit("call:join", map[string]any{"call_id": tc.call})
			if e := carol.Wait("call:participant_joined", 10*time.Second, field("user_id", "carol")); e.Field("recording_id") != rec {
				t.Fatalf("participant_joined during a recording = %s", e.Data)
			}
			carol.Wait("call:recording:consent_requested", 10*time.Second, field("recording_id", rec))
			tc.answer(carol, tc.call, rec)
			all := []*testenv.Client{alice, bob, carol}
			doc, _ := recordingDoc(t, env, "acme", rec)
			if tc.reason == "" {
				checkEvents(t, rec, tc.events...)
				time.Sleep(1700 * time.Millisecond) // past carol's deadline: it keeps running
				for _, c := range all {
					if c.Count("call:recording:stopped") != 0 {
						t.Fatal("recording stopped although carol consented")
					}
				}
				if doc, _ = recordingDoc(t, env, "acme", rec); doc.Status != "recording" || consentOf(doc, "carol").Consent != "granted" {
					t.Fatalf("recording in MongoDB: %+v", doc)
				}
				return
			}
			for _, e := range waitAll(t, all, "call:recording:stopped", rec) {
				if e.Field("reason") != tc.reason || e.Field("user_id") != "carol" {
					t.Fatalf("recording:stopped = %s", e.Data)
				}
			}
			checkEvents(t, rec, tc.events...)
			doc, _ = recordingDoc(t, env, "acme", rec)
			want := map[string]string{"consent_refused": "refused", "consent_timeout": "timeout"}[tc.reason]
			if doc.Status != "stopped" || doc.Reason != tc.reason || consentOf(doc, "carol").Consent != want || doc.StoppedAt == nil {
				t.Fatalf("stopped recording in MongoDB: %+v", doc)
			}
		})
	}

	t.Run("the call ending stops it", func(t *testing.T) {
		alice, bob := dialUser(t, s, "acme", "alice"), dialUser(t, s, "acme", "bob")
		startCall(t, "conv-rec", "call-end", users[:2], alice, bob)
		rec := requestRecording(t, "call-end", alice, alice, bob)
		consent(bob, "call-end", rec, true)
		waitAll(t, []*testenv.Client{alice, bob}, "call:recording:started", rec)
		alice.Close()
		bob.Close()
		checkEvents(t, rec, "recording.requested", "recording.consent", "recording.started", "recording.stopped")
		if doc, _ := recordingDoc(t, env, "acme", rec); doc.Status != persistence.RecordingStopped || doc.Reason != "call_ended" {
			t.Fatalf("recording of an ended call: %+v", doc)
		}
	})
}
