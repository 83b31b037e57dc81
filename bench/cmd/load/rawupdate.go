package main

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// rawUpdates is the store's rate of the persister's other write: one
// last_message_at $max update by _id per conversation of a batch, sent as
// unordered bulk writes of 40 (caasd's chunk size).
type rawUpdates struct {
	Conversations int     `json:"conversations"`
	Updates       int     `json:"updates"`
	Seconds       float64 `json:"seconds"`
	PerSecond     float64 `json:"updates_per_s"`
}

// rawUpdateRate runs $max updates over 50 scratch conversations for d (at
// most 100,000 updates), then drops the collection.
func (b *bench) rawUpdateRate(ctx context.Context, db *mongo.Database, d time.Duration) (rawUpdates, error) {
	const convs, chunk = 50, 40
	coll := db.Collection("bench_rawconv_" + b.prefix)
	defer func() { _ = coll.Drop(context.Background()) }()
	docs := make([]any, convs)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("%s/%s-rawconv-%d", b.cfg.tenant, b.prefix, i)},
			{Key: "tenant_id", Value: b.cfg.tenant}, {Key: "participants", Value: bson.A{bson.D{{Key: "user_id", Value: "a"}, {Key: "role", Value: "owner"}}}}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		return rawUpdates{}, fmt.Errorf("insert conversations: %w", err)
	}
	res := rawUpdates{Conversations: convs}
	models := make([]mongo.WriteModel, 0, chunk)
	start := time.Now()
	for k := 0; res.Updates < 100000 && time.Since(start) < d && ctx.Err() == nil; k++ {
		models = models[:0]
		now := time.Now().UTC()
		for j := range chunk {
			id := fmt.Sprintf("%s/%s-rawconv-%d", b.cfg.tenant, b.prefix, (k*chunk+j)%convs)
			models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).
				SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: "last_message_at", Value: now}}}}))
		}
		if _, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
			return res, fmt.Errorf("update conversations: %w", err)
		}
		res.Updates += len(models)
	}
	res.Seconds = round1(time.Since(start).Seconds())
	res.PerSecond = round1(float64(res.Updates) / time.Since(start).Seconds())
	return res, nil
}
