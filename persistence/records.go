package persistence

import (
	"fmt"
	"time"

	"github.com/caasd/caasd/internal/wire"
)

// Persistence statuses of a message.
const (
	StatusPending   = "pending"
	StatusPersisted = "persisted"
	StatusFailed    = "failed"
)

// PersistenceEvent tells senders what became of one message; the persister
// publishes them in batches on the persistence topic.
type PersistenceEvent struct {
	MessageID      string    `json:"message_id"`
	TenantID       string    `json:"tenant_id"`
	ConversationID string    `json:"conversation_id"`
	SenderID       string    `json:"sender_id"`
	Seq            int64     `json:"seq"`
	Status         string    `json:"status"`
	PersistedAt    time.Time `json:"persisted_at"`
	Duplicate      bool      `json:"duplicate,omitempty"`
	ErrorCode      string    `json:"error_code,omitempty"`
	Error          string    `json:"error,omitempty"`
	// Partition and Offset are where the message's record was in the
	// messages topic: the trackers learn from them how far the persisters
	// got, and do not send again a message whose record they have not
	// reached yet.
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// persistenceBatch is the value of one record on the persistence topic.
type persistenceBatch struct {
	Events []PersistenceEvent `json:"events"`
}

// DecodeMessage parses a chat.messages record value.
func DecodeMessage(b []byte) (*wire.MessageNew, error) {
	var m wire.MessageNew
	if err := wire.DecodeMessageNew(b, &m); err != nil {
		return nil, fmt.Errorf("decode message record: %w", err)
	}
	if m.MessageID == "" || m.TenantID == "" || m.ConversationID == "" || m.Seq <= 0 {
		return nil, fmt.Errorf("decode message record: %w", errIncompleteRecord)
	}
	return &m, nil
}

// MessageKey is the Kafka key of a conversation's messages: one key per
// room keeps a room's messages on one partition, in order.
func MessageKey(tenant, conv string) string { return tenant + "/" + conv }

// TimeFormat is how caasd writes times on the wire.
const TimeFormat = time.RFC3339Nano
