package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/caasd/caasd/internal/config"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/transport"
)

// ConversationStore reads conversations for authorization.
type ConversationStore interface {
	Get(ctx context.Context, tenant, id string) (*persistence.Conversation, error)
	ExistsElsewhere(ctx context.Context, tenant, id string) (bool, error)
	MaxSeq(ctx context.Context, tenant, id string) (int64, error)
}

// SeqStore keeps the rooms' sequence counters and recent lists.
type SeqStore interface {
	Init(ctx context.Context, tenant, conv string, floor func(context.Context) (int64, error)) (int64, error)
	Release(ctx context.Context, tenant, conv, messageID string, seq int64, body []byte) error
	Recent(ctx context.Context, tenant, conv string, maxSeq int64) ([]persistence.RecentEntry, error)
}

// SeqAssigner assigns sequence numbers and dedups message ids, answering
// each request through its Done.
type SeqAssigner interface {
	Submit(r *persistence.AssignRequest) error
}

// HistoryStore reads stored messages and keeps read markers.
type HistoryStore interface {
	Range(ctx context.Context, tenant, conv string, from, to int64, limit int) ([]wire.MessageNew, error)
	Before(ctx context.Context, tenant, conv string, before int64, limit int) ([]wire.MessageNew, error)
	Markers(ctx context.Context, tenant, conv string) (map[string]int64, error)
	SaveMarkers(ctx context.Context, tenant, conv string, markers map[string]int64) error
}

// Publisher sends records to Kafka.
type Publisher interface {
	Send(rec *persistence.Record) error
}

// Confirmer tracks messages until they are persisted.
type Confirmer interface {
	Track(tenant, messageID string, rec *persistence.Record, notify func(persistence.Outcome)) error
	Accepted(tenant, messageID string)
	Forget(tenant, messageID string)
}

// ConnLookup finds this node's connections by id.
type ConnLookup interface {
	Get(id string) (transport.Conn, bool)
	Len() int
}

// Metrics is what the actors report.
type Metrics interface {
	RoomActivated()
	RoomPassivated()
	MemberOnline(delta int)
	MessageRejected(code string)
	ModerationAction(action string)
}

// SnapshotStore keeps room snapshots.
type SnapshotStore interface {
	Save(ctx context.Context, tenant, conv string, lease *persistence.Lease, data []byte) error
	Load(ctx context.Context, tenant, conv string) ([]byte, error)
	Delete(ctx context.Context, tenant, conv string) error
}

// Auditor records moderation actions and replays them.
type Auditor interface {
	Record(ctx context.Context, a *persistence.ModerationAction) error
	History(ctx context.Context, tenant, conv string, before time.Time, limit int, ascending bool) ([]persistence.ModerationAction, error)
}

// Deps are what the engine's actors use.
type Deps struct {
	NodeID        string
	Logger        *slog.Logger
	Metrics       Metrics
	Conversations ConversationStore
	Sequencer     SeqStore
	Assigner      SeqAssigner
	Producer      Publisher
	Tracker       Confirmer
	Conns         ConnLookup
	Snapshots     SnapshotStore
	Leases        LeaseStore
	History       HistoryStore
	Moderation    Auditor
	MessageTopic  string
	Limits        config.Limits
	Rooms         config.Rooms
	// RoomIdle is how long a room without members stays active.
	RoomIdle time.Duration
	// StoreTimeout bounds one call to Redis or MongoDB from an actor.
	StoreTimeout time.Duration
	// ICE answers webrtc:ice-servers; nil: an empty list.
	ICE ICEProvider
	// Recordings stores call recording metadata; nil: no recording.
	Recordings RecordingStore
	// ConsentTimeout bounds a recording consent request (default 30 s).
	ConsentTimeout time.Duration
}
