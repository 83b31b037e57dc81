package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Participant is a member of a conversation with its role.
type Participant struct {
	UserID string `bson:"user_id" json:"user_id"`
	Role   string `bson:"role" json:"role"`
}

// Conversation is a document of the conversations collection.
type Conversation struct {
	ID             string            `bson:"_id" json:"-"`
	TenantID       string            `bson:"tenant_id" json:"tenant_id"`
	ConversationID string            `bson:"conversation_id" json:"conversation_id"`
	Name           string            `bson:"name" json:"name"`
	Participants   []Participant     `bson:"participants" json:"participants"`
	Metadata       map[string]string `bson:"metadata,omitempty" json:"metadata,omitempty"`
	CreatedAt      time.Time         `bson:"created_at" json:"created_at"`
	UpdatedAt      time.Time         `bson:"updated_at" json:"updated_at"`
	LastMessageAt  *time.Time        `bson:"last_message_at,omitempty" json:"last_message_at,omitempty"`
}

// Role returns userID's role, or "" when it is not a participant.
func (c *Conversation) Role(userID string) string {
	for _, p := range c.Participants {
		if p.UserID == userID {
			return p.Role
		}
	}
	return ""
}

// CacheMetrics counts conversation cache lookups.
type CacheMetrics interface {
	CacheHit()
	CacheMiss()
}

// Conversations reads and changes conversations, with a Redis cache in
// front of MongoDB (seed: conversation cache).
type Conversations struct {
	coll     *mongo.Collection
	messages *mongo.Collection
	rdb      redis.UniversalClient
	cacheTTL time.Duration
	metrics  CacheMetrics
}

// NewConversations returns the conversations repository.
func NewConversations(m *Mongo, rdb redis.UniversalClient, cacheTTL time.Duration, metrics CacheMetrics) *Conversations {
	return &Conversations{coll: m.Collection(CollConversations), messages: m.Collection(CollMessages), rdb: rdb, cacheTTL: cacheTTL, metrics: metrics}
}

// Get returns the conversation id of tenant, from the cache when it can.
func (s *Conversations) Get(ctx context.Context, tenant, id string) (*Conversation, error) {
	key := ConversationCacheKey(tenant, id)
	if b, err := s.rdb.Get(ctx, key).Bytes(); err == nil {
		var c Conversation
		if json.Unmarshal(b, &c) == nil {
			s.metrics.CacheHit()
			return &c, nil
		}
	}
	s.metrics.CacheMiss()
	c, err := s.load(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if b, err := json.Marshal(c); err == nil {
		s.rdb.Set(ctx, key, b, s.cacheTTL)
	}
	return c, nil
}

func (s *Conversations) load(ctx context.Context, tenant, id string) (*Conversation, error) {
	var c Conversation
	if err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: docID(tenant, id)}}).Decode(&c); err != nil {
		return nil, fmt.Errorf("conversation %s: %w", id, notFound(err))
	}
	return &c, nil
}

// Invalidate drops the cached copy so the next Get reads MongoDB.
func (s *Conversations) Invalidate(ctx context.Context, tenant, id string) error {
	return s.rdb.Del(ctx, ConversationCacheKey(tenant, id)).Err()
}

// ExistsElsewhere reports whether a conversation with id exists in a tenant
// other than tenant; it tells "forbidden" from "not a member".
func (s *Conversations) ExistsElsewhere(ctx context.Context, tenant, id string) (bool, error) {
	n, err := s.coll.CountDocuments(ctx, bson.D{{Key: "conversation_id", Value: id}, {Key: "tenant_id", Value: bson.D{{Key: "$ne", Value: tenant}}}}, options.Count().SetLimit(1))
	if err != nil {
		return false, fmt.Errorf("conversation lookup: %w", err)
	}
	return n > 0, nil
}

// Create inserts c; ErrConflict if it exists.
func (s *Conversations) Create(ctx context.Context, c *Conversation) error {
	now := time.Now().UTC()
	c.ID = docID(c.TenantID, c.ConversationID)
	c.CreatedAt, c.UpdatedAt = now, now
	if _, err := s.coll.InsertOne(ctx, c); err != nil {
		if isDuplicate(err) {
			return fmt.Errorf("conversation %s: %w", c.ConversationID, ErrConflict)
		}
		return fmt.Errorf("insert conversation: %w", err)
	}
	return s.Invalidate(ctx, c.TenantID, c.ConversationID)
}

// ConversationPatch holds the fields a PATCH may change; nil means unchanged.
type ConversationPatch struct {
	Name     *string            `json:"name"`
	Metadata *map[string]string `json:"metadata"`
}

// Update applies patch and returns the new conversation.
func (s *Conversations) Update(ctx context.Context, tenant, id string, patch ConversationPatch) (*Conversation, error) {
	set := bson.D{{Key: "updated_at", Value: time.Now().UTC()}}
	if patch.Name != nil {
		set = append(set, bson.E{Key: "name", Value: *patch.Name})
	}
	if patch.Metadata != nil {
		set = append(set, bson.E{Key: "metadata", Value: *patch.Metadata})
	}
	return s.findAndUpdate(ctx, tenant, id, bson.D{{Key: "$set", Value: set}})
}

// AddParticipant adds or re-roles a participant.
func (s *Conversations) AddParticipant(ctx context.Context, tenant, id string, p Participant) (*Conversation, error) {
	return s.setParticipants(ctx, tenant, id, func(ps []Participant) []Participant {
		out := ps[:0:0]
		for _, q := range ps {
			if q.UserID != p.UserID {
				out = append(out, q)
			}
		}
		return append(out, p)
	})
}

// RemoveParticipant removes userID from the conversation.
func (s *Conversations) RemoveParticipant(ctx context.Context, tenant, id, userID string) (*Conversation, error) {
	return s.setParticipants(ctx, tenant, id, func(ps []Participant) []Participant {
		out := ps[:0:0]
		for _, q := range ps {
			if q.UserID != userID {
				out = append(out, q)
			}
		}
		return out
	})
}

// setParticipants rewrites the participant list with change. A plain $set
// of the whole list works on every MongoDB-wire server.
func (s *Conversations) setParticipants(ctx context.Context, tenant, id string, change func([]Participant) []Participant) (*Conversation, error) {
	c, err := s.load(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return s.findAndUpdate(ctx, tenant, id, bson.D{{Key: "$set", Value: bson.D{
		{Key: "participants", Value: change(c.Participants)}, {Key: "updated_at", Value: time.Now().UTC()},
	}}})
}

func (s *Conversations) findAndUpdate(ctx context.Context, tenant, id string, update bson.D) (*Conversation, error) {
	var c Conversation
	err := s.coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: docID(tenant, id)}}, update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&c)
	if err != nil {
		return nil, fmt.Errorf("update conversation %s: %w", id, notFound(err))
	}
	if err := s.Invalidate(ctx, tenant, id); err != nil {
		return nil, fmt.Errorf("invalidate conversation cache: %w", err)
	}
	return &c, nil
}

// Delete removes the conversation.
func (s *Conversations) Delete(ctx context.Context, tenant, id string) error {
	res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: docID(tenant, id)}})
	if err != nil {
		return fmt.Errorf("delete conversation %s: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("conversation %s: %w", id, ErrNotFound)
	}
	return s.Invalidate(ctx, tenant, id)
}

// List returns up to limit conversations of tenant after the id cursor.
func (s *Conversations) List(ctx context.Context, tenant, after string, limit int) ([]Conversation, error) {
	filter := bson.D{{Key: "tenant_id", Value: tenant}}
	if after != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: docID(tenant, after)}}})
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	var out []Conversation
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return out, nil
}

// MaxSeq returns the highest stored seq of a conversation, 0 if none.
func (s *Conversations) MaxSeq(ctx context.Context, tenant, id string) (int64, error) {
	var doc struct {
		Seq int64 `bson:"seq"`
	}
	err := s.messages.FindOne(ctx, bson.D{{Key: "tenant_id", Value: tenant}, {Key: "conversation_id", Value: id}},
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}).SetProjection(bson.D{{Key: "seq", Value: 1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("max seq of %s: %w", id, err)
	}
	return doc.Seq, nil
}

// StoredSeqs is a SeqScan of the messages collection: it reads every
// stored message's tenant, conversation and seq, and nothing else.
func (s *Conversations) StoredSeqs(ctx context.Context, yield func(tenant, conv string, seq int64) error) error {
	cur, err := s.messages.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000).
		SetProjection(bson.D{{Key: "_id", Value: 0}, {Key: "tenant_id", Value: 1}, {Key: "conversation_id", Value: 1}, {Key: "seq", Value: 1}}))
	if err != nil {
		return fmt.Errorf("scan stored seqs: %w", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		tenant, okT := cur.Current.Lookup("tenant_id").StringValueOK()
		conv, okC := cur.Current.Lookup("conversation_id").StringValueOK()
		seq, okS := cur.Current.Lookup("seq").AsInt64OK()
		if !okT || !okC || !okS {
			continue // not a sequenced message: no counter to keep
		}
		if err := yield(tenant, conv, seq); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("scan stored seqs: %w", err)
	}
	return nil
}
