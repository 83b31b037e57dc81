package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Collection names (seed).
const (
	CollMessages      = "messages"
	CollConversations = "conversations"
	CollRecordings    = "call_recordings"
)

// Mongo is caasd's MongoDB database handle.
type Mongo struct {
	client *mongo.Client
	db     *mongo.Database
}

// ConnectMongo connects to uri and selects database.
func ConnectMongo(ctx context.Context, uri, database string) (*Mongo, error) {
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetMaxPoolSize(64)
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo connect %s: %w", uri, err)
	}
	return &Mongo{client: client, db: client.Database(database)}, nil
}

// Ping checks that the server answers.
func (m *Mongo) Ping(ctx context.Context) error {
	if err := m.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("mongo ping: %w", err)
	}
	return nil
}

// Close disconnects.
func (m *Mongo) Close(ctx context.Context) error { return m.client.Disconnect(ctx) }

// Collection returns a collection of caasd's database.
func (m *Mongo) Collection(name string) *mongo.Collection { return m.db.Collection(name) }

// EnsureIndexes creates the seed's indexes (and caasd's own) idempotently.
func (m *Mongo) EnsureIndexes(ctx context.Context) error {
	specs := map[string][]mongo.IndexModel{
		CollMessages: {
			// Message ids are chosen by clients, so uniqueness is per tenant:
			// another tenant's id must never make a message a "duplicate".
			{Keys: bson.D{{Key: "tenant_id", Value: 1}, {Key: "message_id", Value: 1}}, Options: options.Index().SetUnique(true).SetName("tenant_message_id_unique")},
			{Keys: bson.D{{Key: "conversation_id", Value: 1}, {Key: "tenant_id", Value: 1}, {Key: "created_at", Value: -1}}, Options: options.Index().SetName("conversation_tenant_created")},
			{Keys: bson.D{{Key: "tenant_id", Value: 1}, {Key: "conversation_id", Value: 1}, {Key: "seq", Value: 1}}, Options: options.Index().SetName("tenant_conversation_seq")},
		},
		CollConversations: {
			{Keys: bson.D{{Key: "tenant_id", Value: 1}, {Key: "participants.user_id", Value: 1}}, Options: options.Index().SetName("tenant_participants")},
			{Keys: bson.D{{Key: "conversation_id", Value: 1}}, Options: options.Index().SetName("conversation_id")},
		},
		CollRecordings: {
			{Keys: bson.D{{Key: "call_id", Value: 1}, {Key: "tenant_id", Value: 1}}, Options: options.Index().SetName("call_tenant")},
			{Keys: bson.D{{Key: "conversation_id", Value: 1}, {Key: "tenant_id", Value: 1}}, Options: options.Index().SetName("conversation_tenant")},
			{Keys: bson.D{{Key: "recording_id", Value: 1}}, Options: options.Index().SetUnique(true).SetName("recording_id_unique")},
		},
	}
	for coll, models := range specs {
		if _, err := m.db.Collection(coll).Indexes().CreateMany(ctx, models); err != nil {
			return fmt.Errorf("create indexes on %s: %w", coll, err)
		}
	}
	return nil
}

// docID is the _id of a tenant-scoped document. MongoDB-wire servers index
// _id best, and the tenant prefix keeps tenants apart by construction.
func docID(tenant, id string) string { return tenant + "/" + id }

func isDuplicate(err error) bool { return mongo.IsDuplicateKeyError(err) }

// notFound maps mongo.ErrNoDocuments to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ErrNotFound
	}
	return err
}
