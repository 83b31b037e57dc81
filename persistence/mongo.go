package persistence

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// index is one index caasd needs.
type index struct {
	coll, name string
	keys       bson.D
	unique     bool
}

func keys(names ...string) bson.D {
	d := make(bson.D, 0, len(names))
	for _, n := range names {
		dir := 1
		if n[0] == '-' {
			n, dir = n[1:], -1
		}
		d = append(d, bson.E{Key: n, Value: dir})
	}
	return d
}

// indexes are the seed's indexes and caasd's own. Message ids are chosen
// by clients, so their uniqueness is per tenant: another tenant's id must
// never make a message a "duplicate".
var indexes = []index{
	{CollMessages, "tenant_message_id_unique", keys("tenant_id", "message_id"), true},
	{CollMessages, "conversation_tenant_created", keys("conversation_id", "tenant_id", "-created_at"), false},
	{CollMessages, "tenant_conversation_seq", keys("tenant_id", "conversation_id", "seq"), false},
	{CollConversations, "tenant_participants", keys("tenant_id", "participants.user_id"), false},
	{CollConversations, "conversation_id", keys("conversation_id"), false},
	{CollReadMarkers, "tenant_conversation", keys("tenant_id", "conversation_id"), false},
	{CollModeration, "tenant_conversation_at", keys("tenant_id", "conversation_id", "-at"), false},
	{CollRecordings, "call_tenant", keys("call_id", "tenant_id"), false},
	{CollRecordings, "conversation_tenant", keys("conversation_id", "tenant_id"), false},
	{CollRecordings, "recording_id_unique", keys("recording_id"), true},
}

// EnsureIndexes creates the indexes that do not exist yet. Only the missing
// ones: FerretDB v1 fails on re-creating an index that exists. A
// collection that does not exist yet has none, and its indexes are not
// listed: the server answers that with an error (NamespaceNotFound), which
// FerretDB logs in full, once per collection on a first start.
//
// A store that reads no index but _id's (FerretDB v1 on SQLite, whose
// explain says it pushes no other filter down) gets only the unique
// indexes: the others are never read there, yet each insert pays for them
// (the two on messages' conversations halve the insert rate). Those an
// earlier start made there are dropped. MongoDB, and FerretDB on a backend
// that pushes filters down, get every index.
func (m *Mongo) EnsureIndexes(ctx context.Context) error {
	colls, err := m.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	have := map[string]map[string]bool{}
	indexesOf := func(coll string) (map[string]bool, error) {
		if have[coll] == nil && !slices.Contains(colls, coll) {
			have[coll] = map[string]bool{}
		}
		if have[coll] == nil {
			n, err := m.indexNames(ctx, coll)
			if err != nil {
				return nil, err
			}
			have[coll] = n
		}
		return have[coll], nil
	}
	// The unique indexes first: they make the messages collection, which
	// the store is asked about before the others.
	for _, unique := range []bool{true, false} {
		want := true
		if !unique {
			if want, err = m.readsSecondaryIndexes(ctx); err != nil {
				return err
			}
		}
		for _, ix := range indexes {
			if ix.unique != unique {
				continue
			}
			names, err := indexesOf(ix.coll)
			if err != nil {
				return err
			}
			switch {
			case want && !names[ix.name]:
				opts := options.Index().SetName(ix.name)
				if ix.unique {
					opts.SetUnique(true)
				}
				if _, err := m.db.Collection(ix.coll).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts}); err != nil {
					return fmt.Errorf("create index %s on %s: %w", ix.name, ix.coll, err)
				}
				names[ix.name] = true
			case !want && names[ix.name]:
				if err := m.db.Collection(ix.coll).Indexes().DropOne(ctx, ix.name); err != nil {
					return fmt.Errorf("drop index %s on %s: %w", ix.name, ix.coll, err)
				}
				delete(names, ix.name)
			}
		}
	}
	return nil
}

// readsSecondaryIndexes tells whether the store can answer a query on
// other fields than _id from an index. MongoDB can; FerretDB, which names
// its version in an explain, says whether it pushed the filter down to its
// backend: FerretDB v1 on SQLite pushes down nothing but an _id equality.
func (m *Mongo) readsSecondaryIndexes(ctx context.Context) (bool, error) {
	var plan struct {
		ServerInfo struct {
			FerretDB string `bson:"ferretdbVersion"`
		} `bson:"serverInfo"`
		FilterPushdown bool `bson:"filterPushdown"`
	}
	cmd := bson.D{{Key: "explain", Value: bson.D{
		{Key: "find", Value: CollMessages},
		{Key: "filter", Value: bson.D{{Key: "tenant_id", Value: ""}, {Key: "conversation_id", Value: ""}}},
	}}}
	if err := m.db.RunCommand(ctx, cmd).Decode(&plan); err != nil {
		return false, fmt.Errorf("explain a query on %s: %w", CollMessages, err)
	}
	return plan.ServerInfo.FerretDB == "" || plan.FilterPushdown, nil
}

func (m *Mongo) indexNames(ctx context.Context, coll string) (map[string]bool, error) {
	cur, err := m.db.Collection(coll).Indexes().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", coll, err)
	}
	var specs []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", coll, err)
	}
	have := make(map[string]bool, len(specs))
	for _, s := range specs {
		have[s.Name] = true
	}
	return have, nil
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
