package server_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/server"
)

// makeRecording records call id of conv with users through WebSocket
// clients: outcome "stopped" (all consent, then stop), "rejected" (the
// second user refuses) or "recording" (left running; clients stay open).
func makeRecording(t *testing.T, s *server.Server, tenant, conv, id, outcome string, users ...string) string {
	t.Helper()
	cs := make([]*testenv.Client, len(users))
	for i, u := range users {
		cs[i] = dialUser(t, s, tenant, u)
	}
	startCall(t, conv, id, users, cs...)
	rec := requestRecording(t, id, cs[0], cs...)
	if outcome == "rejected" {
		consent(cs[1], id, rec, false)
		cs[0].Wait("call:recording:rejected", 10*time.Second, field("recording_id", rec))
		return rec
	}
	for _, c := range cs[1:] {
		consent(c, id, rec, true)
	}
	cs[0].Wait("call:recording:started", 10*time.Second, field("recording_id", rec))
	if outcome == "stopped" {
		time.Sleep(50 * time.Millisecond)
		cs[0].Emit("call:recording:stop", map[string]any{"call_id": id})
		cs[0].Wait("call:recording:stopped", 10*time.Second, field("recording_id", rec))
	}
	return rec
}

type recordingPage struct {
	Recordings []struct {
		RecordingID    string `json:"recording_id"`
		TenantID       string `json:"tenant_id"`
		Status         string `json:"status"`
		DurationMs     int64  `json:"duration_ms"`
		DeletedBy      string `json:"deleted_by"`
		ConversationID string `json:"conversation_id"`
	} `json:"recordings"`
	NextCursor string `json:"next_cursor"`
}

func listRecordings(t *testing.T, base, token, query string) recordingPage {
	t.Helper()
	var p recordingPage
	if err := json.Unmarshal(testenv.MustHTTP(t, 200, "GET", base+"/v1/admin/recordings?"+query, token, nil), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p recordingPage) ids() []string {
	out := []string{}
	for _, r := range p.Recordings {
		out = append(out, r.RecordingID)
	}
	return out
}

type recordingStats struct {
	ByStatus        map[string]int64 `json:"by_status"`
	Total           int64            `json:"total"`
	TotalDurationMs int64            `json:"total_duration_ms"`
	AvgDurationMs   int64            `json:"avg_duration_ms"`
	PerDay          []struct {
		Day   string `json:"day"`
		Count int64  `json:"count"`
	} `json:"per_day"`
}

func getStats(t *testing.T, base, token string) recordingStats {
	t.Helper()
	var st recordingStats
	if err := json.Unmarshal(testenv.MustHTTP(t, 200, "GET", base+"/v1/admin/recordings/stats", token, nil), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRecordingsAdminAPI(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	base := "http://" + s.Addr()
	conversation(t, s, "acme", "conv-a", "alice", "bob")
	conversation(t, s, "acme", "conv-b", "alice", "carol")
	conversation(t, s, "globex", "conv-g", "gina", "hank")
	before := time.Now().UTC().Add(-time.Minute)
	rec1 := makeRecording(t, s, "acme", "conv-a", "call-a1", "stopped", "alice", "bob")
	rec2 := makeRecording(t, s, "acme", "conv-a", "call-a2", "rejected", "alice", "bob")
	rec3 := makeRecording(t, s, "acme", "conv-b", "call-b1", "stopped", "alice", "carol")
	rec4 := makeRecording(t, s, "acme", "conv-b", "call-b2", "recording", "alice", "carol")
	recG := makeRecording(t, s, "globex", "conv-g", "call-g1", "stopped", "gina", "hank")
	admin, other := testenv.Token(t, "root", "acme", "admin"), testenv.Token(t, "boss", "globex", "admin")

	all := listRecordings(t, base, admin, "")
	if want := []string{rec4, rec3, rec2, rec1}; !slices.Equal(all.ids(), want) || all.NextCursor != "" {
		t.Fatalf("list = %v next %q, want %v newest first", all.ids(), all.NextCursor, want)
	}
	var paged []string
	cursor, pages := "", 0
	for {
		p := listRecordings(t, base, admin, "limit=3&cursor="+url.QueryEscape(cursor))
		paged, pages = append(paged, p.ids()...), pages+1
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if pages != 2 || !slices.Equal(paged, all.ids()) {
		t.Fatalf("paging by 3 gave %v in %d pages", paged, pages)
	}

	future, past := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), url.QueryEscape(before.Format(time.RFC3339))
	filters := []struct {
		query string
		want  []string
	}{
		{"conversation_id=conv-a", []string{rec2, rec1}},
		{"call_id=call-b1", []string{rec3}},
		{"status=stopped", []string{rec3, rec1}},
		{"status=rejected", []string{rec2}},
		{"status=recording", []string{rec4}},
		{"participant=carol", []string{rec4, rec3}},
		{"participant=bob&status=stopped", []string{rec1}},
		{"from=" + future, []string{}},
		{"to=" + past, []string{}},
		{"from=" + past + "&to=" + future + "&conversation_id=conv-b", []string{rec4, rec3}},
		{"conversation_id=conv-g", []string{}},
	}
	for _, f := range filters {
		if got := listRecordings(t, base, admin, f.query).ids(); !slices.Equal(got, f.want) {
			t.Fatalf("?%s = %v, want %v", f.query, got, f.want)
		}
	}
	for _, q := range []string{"status=bogus", "limit=0", "limit=201", "cursor=%21%21", "from=yesterday"} {
		if code, b := testenv.HTTP(t, "GET", base+"/v1/admin/recordings?"+q, admin, nil); code != 400 {
			t.Fatalf("?%s: %d %s, want 400", q, code, b)
		}
	}

	var one map[string]any
	if err := json.Unmarshal(testenv.MustHTTP(t, 200, "GET", base+"/v1/admin/recordings/"+rec1, admin, nil), &one); err != nil {
		t.Fatal(err)
	}
	if one["status"] != "stopped" || one["call_id"] != "call-a1" || len(one["participants"].([]any)) != 2 || one["duration_ms"].(float64) <= 0 {
		t.Fatalf("GET %s = %v", rec1, one)
	}
	testenv.MustHTTP(t, 200, "PUT", base+"/v1/admin/recordings/"+rec1+"/storage", admin,
		map[string]any{"location": "s3://recordings/acme/" + rec1 + ".webm", "size_bytes": 123456, "checksum": "sha256:abc"})
	q := testenv.MustHTTP(t, 200, "POST", base+"/v1/admin/recordings/"+rec1+"/quality", admin, map[string]any{"bitrate_kbps": 900, "packet_loss": 1.5, "jitter_ms": 20})
	var qr struct {
		Quality struct {
			Samples    int64   `json:"samples"`
			PacketLoss float64 `json:"packet_loss"`
		} `json:"quality"`
		Storage struct {
			Location string `json:"location"`
		} `json:"storage"`
	}
	if err := json.Unmarshal(q, &qr); err != nil || qr.Quality.Samples != 1 || qr.Quality.PacketLoss != 1.5 || qr.Storage.Location == "" {
		t.Fatalf("after quality and storage: %s", q)
	}
	for _, bad := range []map[string]any{{"bitrate_kbps": -1, "packet_loss": 0, "jitter_ms": 0}, {"bitrate_kbps": 1, "packet_loss": 101, "jitter_ms": 0}, {"bitrate_kbps": 1}} {
		if code, b := testenv.HTTP(t, "POST", base+"/v1/admin/recordings/"+rec1+"/quality", admin, bad); code != 400 {
			t.Fatalf("quality %v: %d %s, want 400", bad, code, b)
		}
	}

	st := getStats(t, base, admin)
	d1, d3 := durationOf(t, base, admin, rec1), durationOf(t, base, admin, rec3)
	today := time.Now().UTC().Format(time.DateOnly)
	if st.Total != 4 || st.ByStatus["stopped"] != 2 || st.ByStatus["rejected"] != 1 || st.ByStatus["recording"] != 1 ||
		st.TotalDurationMs != d1+d3 || st.AvgDurationMs != (d1+d3)/2 || len(st.PerDay) != 1 || st.PerDay[0].Day != today || st.PerDay[0].Count != 4 {
		t.Fatalf("stats = %+v (durations %d, %d)", st, d1, d3)
	}

	// Another tenant's admin sees nothing of acme; a non-admin nothing at all.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/admin/recordings/" + rec1}, {"DELETE", "/v1/admin/recordings/" + rec1},
		{"PUT", "/v1/admin/recordings/" + rec1 + "/storage"}, {"POST", "/v1/admin/recordings/" + rec1 + "/quality"},
	} {
		body := map[string]map[string]any{
			"PUT": {"location": "x"}, "POST": {"bitrate_kbps": 1, "packet_loss": 0, "jitter_ms": 0},
		}[c.method]
		if code, b := testenv.HTTP(t, c.method, base+c.path, other, body); code != 404 {
			t.Fatalf("globex admin %s %s: %d %s, want 404", c.method, c.path, code, b)
		}
		if code, _ := testenv.HTTP(t, c.method, base+c.path, testenv.Token(t, "alice", "acme", "user"), body); code != 403 {
			t.Fatalf("non-admin %s %s: %d, want 403", c.method, c.path, code)
		}
	}
	if got := listRecordings(t, base, other, "").ids(); !slices.Equal(got, []string{recG}) {
		t.Fatalf("globex lists %v", got)
	}
	if gs := getStats(t, base, other); gs.Total != 1 || gs.ByStatus["stopped"] != 1 {
		t.Fatalf("globex stats %+v", gs)
	}
	for _, p := range []string{"/v1/admin/recordings", "/v1/admin/recordings/stats"} {
		if code, _ := testenv.HTTP(t, "GET", base+p, testenv.Token(t, "alice", "acme"), nil); code != 403 {
			t.Fatalf("non-admin GET %s: %d, want 403", p, code)
		}
		if code, _ := testenv.HTTP(t, "GET", base+p, "", nil); code != 401 {
			t.Fatalf("GET %s without a token: %d, want 401", p, code)
		}
	}

	// GDPR deletion.
	testenv.MustHTTP(t, 204, "DELETE", base+"/v1/admin/recordings/"+rec1, admin, nil)
	testenv.MustHTTP(t, 404, "GET", base+"/v1/admin/recordings/"+rec1, admin, nil)
	testenv.MustHTTP(t, 404, "DELETE", base+"/v1/admin/recordings/"+rec1, admin, nil)
	if got := listRecordings(t, base, admin, "").ids(); !slices.Equal(got, []string{rec4, rec3, rec2}) {
		t.Fatalf("list after delete = %v", got)
	}
	stub := listRecordings(t, base, admin, "status=deleted")
	if len(stub.Recordings) != 1 || stub.Recordings[0].RecordingID != rec1 || stub.Recordings[0].DeletedBy != "root" || stub.Recordings[0].ConversationID != "" {
		t.Fatalf("audit stubs = %+v", stub)
	}
	_, raw := recordingDoc(t, env, "acme", rec1)
	keys := []string{}
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"_id", "deleted_at", "deleted_by", "recording_id", "status", "tenant_id"}; !slices.Equal(keys, want) || raw["status"] != "deleted" {
		t.Fatalf("stored after deletion: %v, want only %v", raw, want)
	}
	evs := recordingEvents(t, env, rec1, 7, 10*time.Second)
	last := evs[len(evs)-1]
	if last.Type != "recording.deleted" || last.UserID != "root" || last.Storage == nil || last.Storage.Location != "s3://recordings/acme/"+rec1+".webm" {
		t.Fatalf("last event of %s = %+v (all: %v)", rec1, last, eventTypes(evs, ""))
	}
	if got, want := eventTypes(evs, ""), []string{"recording.requested", "recording.consent", "recording.started", "recording.stopped",
		"recording.storage", "recording.quality", "recording.deleted"}; !slices.Equal(got, want) {
		t.Fatalf("events of %s: %v", rec1, got)
	}
	if st := getStats(t, base, admin); st.Total != 3 || st.ByStatus["deleted"] != 1 || st.ByStatus["stopped"] != 1 || st.TotalDurationMs != d3 {
		t.Fatalf("stats after delete = %+v", st)
	}
}

func durationOf(t *testing.T, base, token, id string) int64 {
	t.Helper()
	var r struct {
		DurationMs int64 `json:"duration_ms"`
	}
	if err := json.Unmarshal(testenv.MustHTTP(t, 200, "GET", base+"/v1/admin/recordings/"+id, token, nil), &r); err != nil {
		t.Fatal(err)
	}
	return r.DurationMs
}
