package persistence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CollModeration is the audit trail of moderation actions.
const CollModeration = "moderation_actions"

// ModerationAction is one entry of the audit trail.
type ModerationAction struct {
	ID             string     `bson:"_id" json:"id"`
	TenantID       string     `bson:"tenant_id" json:"tenant_id"`
	ConversationID string     `bson:"conversation_id" json:"conversation_id"`
	Action         string     `bson:"action" json:"action"`
	ActorID        string     `bson:"actor_id" json:"actor_id"`
	TargetID       string     `bson:"target_id" json:"target_id"`
	Reason         string     `bson:"reason,omitempty" json:"reason,omitempty"`
	DurationS      int64      `bson:"duration_s,omitempty" json:"duration_s,omitempty"`
	Until          *time.Time `bson:"until,omitempty" json:"until,omitempty"`
	At             time.Time  `bson:"at" json:"at"`
	Via            string     `bson:"via" json:"via"`
}

// Moderation records moderation actions in MongoDB and on Kafka.
type Moderation struct {
	coll     *mongo.Collection
	producer *Producer
	topic    string
}

// NewModeration returns the audit trail.
func NewModeration(m *Mongo, producer *Producer, topic string) *Moderation {
	return &Moderation{coll: m.Collection(CollModeration), producer: producer, topic: topic}
}

// Record stores a and publishes it on the moderation topic. The MongoDB
// write is the record of truth and must succeed; the Kafka event follows.
func (s *Moderation) Record(ctx context.Context, a *ModerationAction) error {
	if a.ID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		a.ID = hex.EncodeToString(b[:])
	}
	if _, err := s.coll.InsertOne(ctx, a); err != nil {
		return fmt.Errorf("record moderation action: %w", err)
	}
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode moderation event: %w", err)
	}
	if err := s.producer.Send(&Record{Topic: s.topic, Key: MessageKey(a.TenantID, a.ConversationID), Value: v}); err != nil {
		return fmt.Errorf("publish moderation event: %w", err)
	}
	return nil
}

// History returns a conversation's actions, newest first, oldest-first
// when ascending is set (to rebuild state). before pages backwards (an
// action id returned earlier); limit bounds the page.
func (s *Moderation) History(ctx context.Context, tenant, conv string, before time.Time, limit int, ascending bool) ([]ModerationAction, error) {
	filter := bson.D{{Key: "tenant_id", Value: tenant}, {Key: "conversation_id", Value: conv}}
	if !before.IsZero() {
		filter = append(filter, bson.E{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}})
	}
	dir := -1
	if ascending {
		dir = 1
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "at", Value: dir}, {Key: "_id", Value: dir}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("moderation history: %w", err)
	}
	var out []ModerationAction
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("moderation history: %w", err)
	}
	return out, nil
}
