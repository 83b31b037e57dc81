package persistence

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/caasd/caasd/internal/wire"
)

// CollReadMarkers holds each user's last read seq per conversation.
const CollReadMarkers = "read_markers"

// History reads stored messages and keeps read markers.
type History struct {
	messages *mongo.Collection
	markers  *mongo.Collection
}

// NewHistory returns the history repository.
func NewHistory(m *Mongo) *History {
	return &History{messages: m.Collection(CollMessages), markers: m.Collection(CollReadMarkers)}
}

type storedMessage struct {
	MessageID      string    `bson:"message_id"`
	ConversationID string    `bson:"conversation_id"`
	TenantID       string    `bson:"tenant_id"`
	SenderID       string    `bson:"sender_id"`
	Content        bson.Raw  `bson:"content"`
	Seq            int64     `bson:"seq"`
	CreatedAt      time.Time `bson:"created_at"`
}

func (s storedMessage) wire() wire.MessageNew {
	content := []byte("null")
	if len(s.Content) > 0 {
		if b, err := bson.MarshalExtJSON(s.Content, false, false); err == nil {
			content = b
		}
	}
	return wire.MessageNew{
		MessageID: s.MessageID, ConversationID: s.ConversationID, TenantID: s.TenantID, SenderID: s.SenderID,
		Content: content, Seq: s.Seq, CreatedAt: s.CreatedAt.UTC().Format(TimeFormat),
	}
}

// Range returns the stored messages with from < seq < to, ascending, at
// most limit of them.
func (h *History) Range(ctx context.Context, tenant, conv string, from, to int64, limit int) ([]wire.MessageNew, error) {
	seq := bson.D{{Key: "$gt", Value: from}}
	if to > 0 {
		seq = append(seq, bson.E{Key: "$lt", Value: to})
	}
	return h.find(ctx, bson.D{{Key: "tenant_id", Value: tenant}, {Key: "conversation_id", Value: conv}, {Key: "seq", Value: seq}}, 1, limit)
}

// Before returns up to limit stored messages with seq < before, ascending.
func (h *History) Before(ctx context.Context, tenant, conv string, before int64, limit int) ([]wire.MessageNew, error) {
	out, err := h.find(ctx, bson.D{{Key: "tenant_id", Value: tenant}, {Key: "conversation_id", Value: conv}, {Key: "seq", Value: bson.D{{Key: "$lt", Value: before}}}}, -1, limit)
	slices.Reverse(out)
	return out, err
}

func (h *History) find(ctx context.Context, filter bson.D, dir, limit int) ([]wire.MessageNew, error) {
	cur, err := h.messages.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "seq", Value: dir}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	var docs []storedMessage
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	out := make([]wire.MessageNew, len(docs))
	for i, d := range docs {
		out[i] = d.wire()
	}
	return out, nil
}

type markerDoc struct {
	ID          string `bson:"_id"`
	TenantID    string `bson:"tenant_id"`
	Conv        string `bson:"conversation_id"`
	UserID      string `bson:"user_id"`
	LastReadSeq int64  `bson:"last_read_seq"`
}

// Markers returns every user's last read seq in a conversation.
func (h *History) Markers(ctx context.Context, tenant, conv string) (map[string]int64, error) {
	cur, err := h.markers.Find(ctx, bson.D{{Key: "tenant_id", Value: tenant}, {Key: "conversation_id", Value: conv}})
	if err != nil {
		return nil, fmt.Errorf("read markers: %w", err)
	}
	var docs []markerDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("read markers: %w", err)
	}
	out := make(map[string]int64, len(docs))
	for _, d := range docs {
		out[d.UserID] = d.LastReadSeq
	}
	return out, nil
}

// SaveMarkers moves read markers forward ($max: never back), in chunks
// small enough for every MongoDB-wire server.
func (h *History) SaveMarkers(ctx context.Context, tenant, conv string, markers map[string]int64) error {
	models := make([]mongo.WriteModel, 0, len(markers))
	for user, seq := range markers {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: docID(tenant, conv+"/"+user)}}).
			SetUpdate(bson.D{
				{Key: "$max", Value: bson.D{{Key: "last_read_seq", Value: seq}}},
				{Key: "$setOnInsert", Value: bson.D{{Key: "tenant_id", Value: tenant}, {Key: "conversation_id", Value: conv}, {Key: "user_id", Value: user}}},
			}).SetUpsert(true))
	}
	const chunk = 40
	for i := 0; i < len(models); i += chunk {
		if _, err := h.markers.BulkWrite(ctx, models[i:min(i+chunk, len(models))], options.BulkWrite().SetOrdered(false)); err != nil {
			return fmt.Errorf("save read markers: %w", err)
		}
	}
	return nil
}
