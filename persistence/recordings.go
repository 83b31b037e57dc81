package persistence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Statuses of a call recording.
const (
	RecordingRequested = "requested"
	RecordingActive    = "recording"
	RecordingStopped   = "stopped"
	RecordingRejected  = "rejected"
	RecordingDeleted   = "deleted"
)

// Consent answers of a recording participant.
const (
	ConsentPending  = "pending"
	ConsentGranted  = "granted"
	ConsentRefused  = "refused"
	ConsentTimedOut = "timeout"
)

// Types of the events on the recording topic (webrtc.recording.events).
const (
	EventRecordingRequested        = "recording.requested"
	EventRecordingConsent          = "recording.consent"
	EventRecordingParticipantAdded = "recording.participant_added"
	EventRecordingStarted          = "recording.started"
	EventRecordingRejected         = "recording.rejected"
	EventRecordingStopped          = "recording.stopped"
	EventRecordingQuality          = "recording.quality"
	EventRecordingStorage          = "recording.storage"
	EventRecordingDeleted          = "recording.deleted"
)

// RecordingParticipant is one user of a recorded call and their consent.
type RecordingParticipant struct {
	UserID    string     `bson:"user_id" json:"user_id"`
	Consent   string     `bson:"consent" json:"consent"`
	ConsentAt *time.Time `bson:"consent_at,omitempty" json:"consent_at,omitempty"`
	AddedAt   time.Time  `bson:"added_at" json:"added_at"`
}

// RecordingQuality holds the mean of the quality reports of a recording.
type RecordingQuality struct {
	BitrateKbps float64    `bson:"bitrate_kbps" json:"bitrate_kbps"`
	PacketLoss  float64    `bson:"packet_loss" json:"packet_loss"`
	JitterMs    float64    `bson:"jitter_ms" json:"jitter_ms"`
	Samples     int64      `bson:"samples" json:"samples"`
	UpdatedAt   *time.Time `bson:"updated_at,omitempty" json:"updated_at,omitempty"`
}

// QualitySample is one quality report: bitrate in kbit/s, packet loss in
// percent (0–100), jitter in milliseconds.
type QualitySample struct {
	BitrateKbps float64 `json:"bitrate_kbps"`
	PacketLoss  float64 `json:"packet_loss"`
	JitterMs    float64 `json:"jitter_ms"`
}

// Validate checks the ranges of a sample.
func (q QualitySample) Validate() error {
	switch {
	case !(q.BitrateKbps >= 0 && q.BitrateKbps <= 1e7):
		return fmt.Errorf("bitrate_kbps must be 0–10000000: %w", ErrInvalidRecording)
	case !(q.PacketLoss >= 0 && q.PacketLoss <= 100):
		return fmt.Errorf("packet_loss must be a percentage 0–100: %w", ErrInvalidRecording)
	case !(q.JitterMs >= 0 && q.JitterMs <= 1e6):
		return fmt.Errorf("jitter_ms must be 0–1000000: %w", ErrInvalidRecording)
	}
	return nil
}

// RecordingStorage says where a recording's media file is.
type RecordingStorage struct {
	Location  string     `bson:"location" json:"location"`
	SizeBytes int64      `bson:"size_bytes" json:"size_bytes"`
	Checksum  string     `bson:"checksum" json:"checksum"`
	UpdatedAt *time.Time `bson:"updated_at,omitempty" json:"updated_at,omitempty"`
}

// Recording is a document of the call_recordings collection. A deleted
// recording keeps only an audit stub: RecordingID, TenantID, Status
// (deleted), DeletedAt and DeletedBy.
type Recording struct {
	ID             string                 `bson:"_id" json:"-"`
	RecordingID    string                 `bson:"recording_id" json:"recording_id"`
	TenantID       string                 `bson:"tenant_id" json:"tenant_id"`
	CallID         string                 `bson:"call_id,omitempty" json:"call_id,omitempty"`
	ConversationID string                 `bson:"conversation_id,omitempty" json:"conversation_id,omitempty"`
	RequestedBy    string                 `bson:"requested_by,omitempty" json:"requested_by,omitempty"`
	Participants   []RecordingParticipant `bson:"participants,omitempty" json:"participants,omitempty"`
	ParticipantIDs []string               `bson:"participant_ids,omitempty" json:"-"`
	Status         string                 `bson:"status" json:"status"`
	Reason         string                 `bson:"reason,omitempty" json:"reason,omitempty"`
	EndedBy        string                 `bson:"ended_by,omitempty" json:"ended_by,omitempty"`
	RequestedAt    *time.Time             `bson:"requested_at,omitempty" json:"requested_at,omitempty"`
	Day            string                 `bson:"day,omitempty" json:"-"`
	StartedAt      *time.Time             `bson:"started_at,omitempty" json:"started_at,omitempty"`
	StoppedAt      *time.Time             `bson:"stopped_at,omitempty" json:"stopped_at,omitempty"`
	DurationMs     int64                  `bson:"duration_ms" json:"duration_ms"`
	Quality        *RecordingQuality      `bson:"quality,omitempty" json:"quality,omitempty"`
	Storage        *RecordingStorage      `bson:"storage,omitempty" json:"storage,omitempty"`
	DeletedAt      *time.Time             `bson:"deleted_at,omitempty" json:"deleted_at,omitempty"`
	DeletedBy      string                 `bson:"deleted_by,omitempty" json:"deleted_by,omitempty"`
	UpdatedAt      *time.Time             `bson:"updated_at,omitempty" json:"updated_at,omitempty"`
}

// RecordingEvent is the value of a record on the recording topic, keyed
// by tenant/recording_id so one recording's events stay in order.
type RecordingEvent struct {
	Type           string                 `json:"type"`
	RecordingID    string                 `json:"recording_id"`
	TenantID       string                 `json:"tenant_id"`
	CallID         string                 `json:"call_id,omitempty"`
	ConversationID string                 `json:"conversation_id,omitempty"`
	Status         string                 `json:"status,omitempty"`
	UserID         string                 `json:"user_id,omitempty"`
	Consent        string                 `json:"consent,omitempty"`
	Reason         string                 `json:"reason,omitempty"`
	Participants   []RecordingParticipant `json:"participants,omitempty"`
	DurationMs     int64                  `json:"duration_ms,omitempty"`
	Quality        *RecordingQuality      `json:"quality,omitempty"`
	Storage        *RecordingStorage      `json:"storage,omitempty"`
	At             time.Time              `json:"at"`
}

// RecordPublisher sends records to Kafka (Producer does).
type RecordPublisher interface {
	Send(rec *Record) error
}

// Recordings stores call recording metadata in MongoDB and publishes
// every change on the recording topic.
type Recordings struct {
	coll   *mongo.Collection
	pub    RecordPublisher
	topic  string
	logger *slog.Logger
	now    func() time.Time
}

// NewRecordings returns the recordings repository.
func NewRecordings(m *Mongo, pub RecordPublisher, topic string, logger *slog.Logger) *Recordings {
	return &Recordings{coll: m.Collection(CollRecordings), pub: pub, topic: topic, logger: logger, now: func() time.Time { return time.Now().UTC() }}
}

// NewRecordingID returns a new recording id: "rec_", the time in
// milliseconds as 13 hex digits, then 16 random hex digits, so ids sort by
// creation time.
func NewRecordingID(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("rec_%013x%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}

// notDeleted selects the live document of a recording.
func notDeleted(tenant, id string) bson.D {
	return bson.D{{Key: "_id", Value: docID(tenant, id)}, {Key: "status", Value: bson.D{{Key: "$ne", Value: RecordingDeleted}}}}
}

// Create inserts a new recording (status requested) and publishes
// recording.requested. Like every change but Delete, the event is sent
// once the change is stored, without waiting for Kafka.
func (s *Recordings) Create(ctx context.Context, r *Recording) error {
	now := s.now()
	r.ID = docID(r.TenantID, r.RecordingID)
	if r.Status == "" {
		r.Status = RecordingRequested
	}
	if r.RequestedAt == nil {
		r.RequestedAt = &now
	}
	r.Day = r.RequestedAt.UTC().Format(time.DateOnly)
	r.UpdatedAt = &now
	r.ParticipantIDs = participantIDs(r.Participants)
	if r.Quality == nil {
		r.Quality = &RecordingQuality{}
	}
	if _, err := s.coll.InsertOne(ctx, r); err != nil {
		if isDuplicate(err) {
			return fmt.Errorf("recording %s: %w", r.RecordingID, ErrConflict)
		}
		return fmt.Errorf("insert recording %s: %w", r.RecordingID, err)
	}
	s.publish(RecordingEvent{
		Type: EventRecordingRequested, RecordingID: r.RecordingID, TenantID: r.TenantID, CallID: r.CallID,
		ConversationID: r.ConversationID, Status: r.Status, UserID: r.RequestedBy, Participants: r.Participants, At: now,
	})
	return nil
}

// RecordingUpdate is one change of a recording made by its call.
type RecordingUpdate struct {
	// Event is the event type published for the change.
	Event                                         string
	TenantID, RecordingID, CallID, ConversationID string
	// Status is the new status; empty keeps it.
	Status string
	// Reason says why a recording was rejected or stopped.
	Reason string
	// UserID is who caused the change; Consent their answer, for consent events.
	UserID, Consent string
	// Participants is the whole new list; nil keeps it.
	Participants []RecordingParticipant
	// StartedAt is set when the recording starts, and must be passed
	// again with StoppedAt so the duration can be computed.
	StartedAt, StoppedAt *time.Time
}

// Update applies u to a live recording and publishes its event.
// ErrNotFound means the recording does not exist or was deleted.
func (s *Recordings) Update(ctx context.Context, u RecordingUpdate) error {
	now := s.now()
	set := bson.D{{Key: "updated_at", Value: now}}
	ev := RecordingEvent{
		Type: u.Event, RecordingID: u.RecordingID, TenantID: u.TenantID, CallID: u.CallID, ConversationID: u.ConversationID,
		Status: u.Status, UserID: u.UserID, Consent: u.Consent, Reason: u.Reason, Participants: u.Participants, At: now,
	}
	if u.Status != "" {
		set = append(set, bson.E{Key: "status", Value: u.Status})
	}
	if u.Reason != "" {
		set = append(set, bson.E{Key: "reason", Value: u.Reason})
	}
	if u.Participants != nil {
		set = append(set, bson.E{Key: "participants", Value: u.Participants}, bson.E{Key: "participant_ids", Value: participantIDs(u.Participants)})
	}
	if u.StartedAt != nil && u.StoppedAt == nil {
		set = append(set, bson.E{Key: "started_at", Value: *u.StartedAt})
	}
	if u.StoppedAt != nil {
		set = append(set, bson.E{Key: "stopped_at", Value: *u.StoppedAt})
		if u.StartedAt != nil {
			ev.DurationMs = u.StoppedAt.Sub(*u.StartedAt).Milliseconds()
			set = append(set, bson.E{Key: "duration_ms", Value: ev.DurationMs})
		}
		if u.UserID != "" {
			set = append(set, bson.E{Key: "ended_by", Value: u.UserID})
		}
	}
	res, err := s.coll.UpdateOne(ctx, notDeleted(u.TenantID, u.RecordingID), bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return fmt.Errorf("update recording %s: %w", u.RecordingID, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("recording %s: %w", u.RecordingID, ErrNotFound)
	}
	s.publish(ev)
	return nil
}

// Get returns a live recording of tenant; ErrNotFound if it does not
// exist, was deleted, or belongs to another tenant.
func (s *Recordings) Get(ctx context.Context, tenant, id string) (*Recording, error) {
	var r Recording
	if err := s.coll.FindOne(ctx, notDeleted(tenant, id)).Decode(&r); err != nil {
		return nil, fmt.Errorf("recording %s: %w", id, notFound(err))
	}
	return &r, nil
}

// maxQualityRetries bounds the optimistic retries of AddQuality.
const maxQualityRetries = 8

// AddQuality folds one quality sample into the recording's means and
// publishes recording.quality. Concurrent reports are serialised by an
// optimistic check on the sample count (no transactions on FerretDB).
func (s *Recordings) AddQuality(ctx context.Context, tenant, id string, q QualitySample, by string) (*Recording, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	for range maxQualityRetries {
		r, err := s.Get(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		old := RecordingQuality{}
		if r.Quality != nil {
			old = *r.Quality
		}
		now := s.now()
		n := float64(old.Samples)
		nq := RecordingQuality{
			BitrateKbps: (old.BitrateKbps*n + q.BitrateKbps) / (n + 1),
			PacketLoss:  (old.PacketLoss*n + q.PacketLoss) / (n + 1),
			JitterMs:    (old.JitterMs*n + q.JitterMs) / (n + 1),
			Samples:     old.Samples + 1, UpdatedAt: &now,
		}
		filter := append(notDeleted(tenant, id), bson.E{Key: "quality.samples", Value: old.Samples})
		res, err := s.coll.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "quality", Value: nq}, {Key: "updated_at", Value: now}}}})
		if err != nil {
			return nil, fmt.Errorf("update recording quality %s: %w", id, err)
		}
		if res.MatchedCount == 0 {
			continue // another report won the race, or the recording went
		}
		r.Quality, r.UpdatedAt = &nq, &now
		s.publish(RecordingEvent{
			Type: EventRecordingQuality, RecordingID: id, TenantID: tenant, CallID: r.CallID, ConversationID: r.ConversationID,
			Status: r.Status, UserID: by, Quality: &nq, At: now,
		})
		return r, nil
	}
	return nil, fmt.Errorf("update recording quality %s: %w", id, ErrConflict)
}

// SetStorage records where the media file is and publishes recording.storage.
func (s *Recordings) SetStorage(ctx context.Context, tenant, id string, st RecordingStorage, by string) (*Recording, error) {
	now := s.now()
	st.UpdatedAt = &now
	res, err := s.coll.UpdateOne(ctx, notDeleted(tenant, id), bson.D{{Key: "$set", Value: bson.D{{Key: "storage", Value: st}, {Key: "updated_at", Value: now}}}})
	if err != nil {
		return nil, fmt.Errorf("update recording storage %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return nil, fmt.Errorf("recording %s: %w", id, ErrNotFound)
	}
	r, err := s.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	s.publish(RecordingEvent{
		Type: EventRecordingStorage, RecordingID: id, TenantID: tenant, CallID: r.CallID, ConversationID: r.ConversationID,
		Status: r.Status, UserID: by, Storage: &st, At: now,
	})
	return r, nil
}

// Delete erases a recording's metadata for GDPR: the deletion event
// (carrying the storage location, so the file can be removed) is
// published and acknowledged by Kafka first, then the document is
// replaced by an audit stub. A failure leaves the metadata in place, so
// the caller can retry; a retry may publish the event again.
func (s *Recordings) Delete(ctx context.Context, tenant, id, by string) error {
	r, err := s.Get(ctx, tenant, id)
	if err != nil {
		return err
	}
	now := s.now()
	done := make(chan error, 1)
	rec, err := s.record(RecordingEvent{
		Type: EventRecordingDeleted, RecordingID: id, TenantID: tenant, Status: RecordingDeleted,
		UserID: by, Storage: r.Storage, At: now,
	})
	if err != nil {
		return err
	}
	rec.Done = func(err error) { done <- err }
	if err := s.pub.Send(rec); err != nil {
		return fmt.Errorf("publish recording deletion %s: %w", id, err)
	}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("publish recording deletion %s: %w", id, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("publish recording deletion %s: %w", id, ctx.Err())
	}
	stub := bson.D{
		{Key: "_id", Value: docID(tenant, id)}, {Key: "recording_id", Value: id}, {Key: "tenant_id", Value: tenant},
		{Key: "status", Value: RecordingDeleted}, {Key: "deleted_at", Value: now}, {Key: "deleted_by", Value: by},
	}
	res, err := s.coll.ReplaceOne(ctx, notDeleted(tenant, id), stub)
	if err != nil {
		return fmt.Errorf("erase recording %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("recording %s: %w", id, ErrNotFound)
	}
	return nil
}

// record encodes ev as a record of the recording topic.
func (s *Recordings) record(ev RecordingEvent) (*Record, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode recording event: %w", err)
	}
	return &Record{Topic: s.topic, Key: ev.TenantID + "/" + ev.RecordingID, Value: b}, nil
}

// publish sends ev without waiting. The change is already stored, so a
// failure (Kafka down or overloaded beyond the producer's retries) is
// logged rather than returned.
func (s *Recordings) publish(ev RecordingEvent) {
	rec, err := s.record(ev)
	if err != nil {
		s.logger.Error("recording event not encoded", "type", ev.Type, "recording_id", ev.RecordingID, "err", err)
		return
	}
	typ, id := ev.Type, ev.RecordingID
	rec.Done = func(err error) {
		if err != nil {
			s.logger.Warn("recording event not published", "type", typ, "recording_id", id, "err", err)
		}
	}
	if err := s.pub.Send(rec); err != nil {
		s.logger.Warn("recording event not published", "type", typ, "recording_id", id, "err", err)
	}
}

func participantIDs(ps []RecordingParticipant) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.UserID
	}
	return ids
}
