package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// rawDoc has the shape of a document of caasd's messages collection.
type rawDoc struct {
	ID             string    `bson:"_id"`
	MessageID      string    `bson:"message_id"`
	ConversationID string    `bson:"conversation_id"`
	TenantID       string    `bson:"tenant_id"`
	SenderID       string    `bson:"sender_id"`
	Content        bson.M    `bson:"content"`
	Seq            int64     `bson:"seq"`
	CreatedAt      time.Time `bson:"created_at"`
	PersistedAt    time.Time `bson:"persisted_at"`
}

// rawResult is the store's own bulk-insert rate.
type rawResult struct {
	Docs      int     `json:"docs"`
	Batch     int     `json:"batch"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"docs_per_s"`
	Indexes   int     `json:"indexes,omitzero"` // of the scratch collection
	Writers   int     `json:"writers"`
	// Updates is the rate of the persister's conversation updates alone.
	Updates rawUpdates `json:"conversation_updates,omitzero"`
}

const rawBatch = 500

// rawInsertRate inserts batches of 500 message-shaped documents, unordered,
// into a scratch collection with the indexes of caasd's messages
// collection for d (at most 2,000 batches), from -raw-writers writers,
// then drops it.
func (b *bench) rawInsertRate(ctx context.Context, d time.Duration) (rawResult, error) {
	c := b.cfg
	client, err := mongo.Connect(options.Client().ApplyURI(c.mongoURI).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return rawResult{}, fmt.Errorf("mongo connect: %w", err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	coll := client.Database(c.mongoDB).Collection("bench_raw_" + b.prefix)
	defer func() { _ = coll.Drop(context.Background()) }()
	idx, err := messagesIndexes(ctx, client.Database(c.mongoDB).Collection(messagesCollection))
	if err != nil {
		return rawResult{}, err
	}
	if len(idx) > 0 {
		if _, err := coll.Indexes().CreateMany(ctx, idx); err != nil {
			return rawResult{}, fmt.Errorf("create indexes: %w", err)
		}
	}
	res, err := b.rawInserts(ctx, coll, d, "raw")
	if err != nil {
		return res, err
	}
	res.Indexes = len(idx)
	res.Updates, err = b.rawUpdateRate(ctx, client.Database(c.mongoDB), d/2)
	return res, err
}

// messagesIndexes returns the indexes caasd made on its messages
// collection (but _id's), for the scratch collection to have the same: on
// FerretDB caasd keeps only the unique one (persistence.EnsureIndexes).
func messagesIndexes(ctx context.Context, coll *mongo.Collection) ([]mongo.IndexModel, error) {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list caasd's messages indexes: %w", err)
	}
	var specs []struct {
		Name   string `bson:"name"`
		Key    bson.D `bson:"key"`
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return nil, fmt.Errorf("list caasd's messages indexes: %w", err)
	}
	var idx []mongo.IndexModel
	for _, s := range specs {
		if s.Name != "_id_" {
			idx = append(idx, mongo.IndexModel{Keys: s.Key, Options: options.Index().SetName(s.Name).SetUnique(s.Unique)})
		}
	}
	return idx, nil
}

// rawResultAfter is the store's bulk-insert rate into caasd's messages
// collection itself, once the pipeline phases have filled it.
type rawResultAfter struct {
	rawResult
	// DocsBefore is about the collection's size when the inserts began:
	// the messages confirmed as persisted by the phases before (counting
	// the documents on FerretDB would scan them all).
	DocsBefore uint64 `json:"collection_docs_before"`
}

// rawInsertRateAfter inserts the raw phase's batches into caasd's messages
// collection (ids of their own, which no message has) for d, after the
// pipeline phases: the store's rate at the size the pipeline left the
// collection, with caasd idle and the core to itself again. Beside the
// first raw rate it tells how much of the pipeline's gap is the grown
// collection and how much the shared core.
func (b *bench) rawInsertRateAfter(ctx context.Context, d time.Duration, docsBefore uint64) (rawResultAfter, error) {
	c := b.cfg
	client, err := mongo.Connect(options.Client().ApplyURI(c.mongoURI).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return rawResultAfter{}, fmt.Errorf("mongo connect: %w", err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	coll := client.Database(c.mongoDB).Collection(messagesCollection)
	res, err := b.rawInserts(ctx, coll, d, "rawafter")
	return rawResultAfter{rawResult: res, DocsBefore: docsBefore}, err
}

// messagesCollection is caasd's messages collection.
const messagesCollection = "messages"

// rawInserts inserts batches of rawBatch documents tagged tag into coll
// for d (at most 2,000 batches) from -raw-writers writers.
func (b *bench) rawInserts(ctx context.Context, coll *mongo.Collection, d time.Duration, tag string) (rawResult, error) {
	res := rawResult{Batch: rawBatch, Writers: max(b.cfg.rawWriters, 1)}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := range res.Writers {
		wg.Go(func() {
			docs := make([]any, rawBatch)
			for n := w; n < 2000 && time.Since(start) < d && ctx.Err() == nil; n += res.Writers {
				b.rawDocs(docs, n, tag)
				_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
				mu.Lock()
				if err != nil {
					firstErr = cmp.Or(firstErr, fmt.Errorf("insert batch %d: %w", n, err))
				} else {
					res.Docs += len(docs)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	res.Seconds = round1(time.Since(start).Seconds())
	res.PerSecond = round1(float64(res.Docs) / time.Since(start).Seconds())
	return res, nil
}

// rawDocs fills docs with batch n of message-shaped documents tagged tag.
func (b *bench) rawDocs(docs []any, n int, tag string) {
	now := time.Now().UTC()
	for i := range docs {
		k := n*rawBatch + i
		id := fmt.Sprintf("ld|9|%d|%s.%s.%d", now.UnixNano(), b.prefix, tag, k)
		docs[i] = rawDoc{
			ID: b.cfg.tenant + "/" + id, MessageID: id, ConversationID: fmt.Sprintf("%s-%s-r%d", b.prefix, tag, k%50),
			TenantID: b.cfg.tenant, SenderID: fmt.Sprintf("%s-%s-u%d", b.prefix, tag, k%100),
			Content: bson.M{"type": "text", "text": id}, Seq: int64(k/50 + 1), CreatedAt: now, PersistedAt: now,
		}
	}
}
