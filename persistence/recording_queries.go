package persistence

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// RecordingFilter selects recordings of one tenant; zero fields match all.
type RecordingFilter struct {
	ConversationID string
	CallID         string
	// Status selects one status; empty means every status but deleted.
	Status string
	// Participant selects recordings this user took part in.
	Participant string
	// From and To bound the request time: From <= requested_at < To.
	From, To time.Time
}

func (f RecordingFilter) query(tenant string) bson.D {
	q := bson.D{{Key: "tenant_id", Value: tenant}}
	if f.ConversationID != "" {
		q = append(q, bson.E{Key: "conversation_id", Value: f.ConversationID})
	}
	if f.CallID != "" {
		q = append(q, bson.E{Key: "call_id", Value: f.CallID})
	}
	if f.Status != "" {
		q = append(q, bson.E{Key: "status", Value: f.Status})
	} else {
		q = append(q, bson.E{Key: "status", Value: bson.D{{Key: "$ne", Value: RecordingDeleted}}})
	}
	if f.Participant != "" {
		q = append(q, bson.E{Key: "participant_ids", Value: f.Participant})
	}
	return withTimeRange(q, f.From, f.To)
}

// withTimeRange adds from <= requested_at < to to q (zero: no bound).
func withTimeRange(q bson.D, from, to time.Time) bson.D {
	var at bson.D
	if !from.IsZero() {
		at = append(at, bson.E{Key: "$gte", Value: from.UTC()})
	}
	if !to.IsZero() {
		at = append(at, bson.E{Key: "$lt", Value: to.UTC()})
	}
	if at != nil {
		q = append(q, bson.E{Key: "requested_at", Value: at})
	}
	return q
}

// EncodeRecordingCursor returns the opaque cursor that continues a list
// after the recording id.
func EncodeRecordingCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id))
}

// decodeCursor reverses EncodeRecordingCursor.
func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 || strings.ContainsAny(string(b), "/\x00") {
		return "", fmt.Errorf("cursor: %w", ErrInvalidRecording)
	}
	return string(b), nil
}

// List returns up to limit recordings of tenant matching f, newest first
// (recording ids sort by creation time), after the cursor of a previous
// page (empty: from the start). next is empty on the last page.
func (s *Recordings) List(ctx context.Context, tenant string, f RecordingFilter, cursor string, limit int) (out []Recording, next string, err error) {
	q := f.query(tenant)
	if cursor != "" {
		after, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q = append(q, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: docID(tenant, after)}}})
	}
	cur, err := s.coll.Find(ctx, q, options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, "", fmt.Errorf("list recordings: %w", err)
	}
	if err := cur.All(ctx, &out); err != nil {
		return nil, "", fmt.Errorf("list recordings: %w", err)
	}
	if len(out) > limit {
		out = out[:limit]
		next = EncodeRecordingCursor(out[limit-1].RecordingID)
	}
	return out, next, nil
}

// DayStats are one day's recordings (by request time, UTC).
type DayStats struct {
	Day             string `json:"day"`
	Count           int64  `json:"count"`
	TotalDurationMs int64  `json:"total_duration_ms"`
}

// RecordingStats summarise a tenant's recordings.
type RecordingStats struct {
	// ByStatus counts recordings by status, deleted stubs included.
	ByStatus map[string]int64 `json:"by_status"`
	// Total counts recordings that are not deleted.
	Total int64 `json:"total"`
	// TotalDurationMs and AvgDurationMs cover the stopped recordings.
	TotalDurationMs int64      `json:"total_duration_ms"`
	AvgDurationMs   int64      `json:"avg_duration_ms"`
	PerDay          []DayStats `json:"per_day"`
}

// Stats counts tenant's recordings requested in [from, to) (zero: no
// bound) by status and by day, with the total and mean duration of the
// stopped ones. It streams a projection of the matching documents and
// sums in Go: FerretDB's $group sums a field as 0.
func (s *Recordings) Stats(ctx context.Context, tenant string, from, to time.Time) (*RecordingStats, error) {
	match := withTimeRange(bson.D{{Key: "tenant_id", Value: tenant}}, from, to)
	proj := bson.D{{Key: "status", Value: 1}, {Key: "day", Value: 1}, {Key: "duration_ms", Value: 1}}
	cur, err := s.coll.Find(ctx, match, options.Find().SetProjection(proj).SetBatchSize(1000))
	if err != nil {
		return nil, fmt.Errorf("recording stats: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	st := &RecordingStats{ByStatus: map[string]int64{}, PerDay: []DayStats{}}
	days := map[string]*DayStats{}
	var stopped int64
	for cur.Next(ctx) {
		var row struct {
			Status     string `bson:"status"`
			Day        string `bson:"day"`
			DurationMs int64  `bson:"duration_ms"`
		}
		if err := cur.Decode(&row); err != nil {
			return nil, fmt.Errorf("recording stats: %w", err)
		}
		st.ByStatus[row.Status]++
		if row.Status == RecordingDeleted {
			continue
		}
		st.Total++
		if row.Status == RecordingStopped {
			stopped++
			st.TotalDurationMs += row.DurationMs
		}
		d := days[row.Day]
		if d == nil {
			d = &DayStats{Day: row.Day}
			days[row.Day] = d
		}
		d.Count++
		d.TotalDurationMs += row.DurationMs
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("recording stats: %w", err)
	}
	if stopped > 0 {
		st.AvgDurationMs = st.TotalDurationMs / stopped
	}
	for _, d := range days {
		st.PerDay = append(st.PerDay, *d)
	}
	sort.Slice(st.PerDay, func(i, j int) bool { return st.PerDay[i].Day < st.PerDay[j].Day })
	return st, nil
}
