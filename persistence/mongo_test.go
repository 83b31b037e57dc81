package persistence_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/persistence"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestEnsureIndexesOnAFreshStoreAndAgain: on an empty FerretDB the indexes
// are created without one warning in the store's log (it logs every error
// it answers, such as listing the indexes of a collection that does not
// exist), and a second run, after a restart of the store on its data,
// finds them and creates none again. FerretDB on SQLite reads no index but
// _id's (its explain pushes no other filter down), so only the unique ones
// are made there, and a non-unique one an earlier start made is dropped.
func TestEnsureIndexesOnAFreshStoreAndAgain(t *testing.T) {
	ctx := context.Background()
	dir, addr := t.TempDir(), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	var log testenv.SyncBuffer
	logger := embedded.Quiet(slog.New(slog.NewTextHandler(&log, nil)))
	want := []string{"_id_", "tenant_message_id_unique"}
	for run := range 2 {
		before := len(log.String())
		store, err := embedded.StartMongo(dir, addr, logger)
		if err != nil {
			t.Fatal(err)
		}
		db, err := persistence.ConnectMongo(ctx, store.URI(), "caas")
		if err != nil {
			store.Close()
			t.Fatal(err)
		}
		err = db.EnsureIndexes(ctx)
		var names []string
		if err == nil {
			names, err = indexNames(ctx, db, persistence.CollMessages)
		}
		if err == nil && run == 0 {
			// As a start before this rule left it: with a non-unique index.
			_, err = db.Collection(persistence.CollMessages).Indexes().CreateOne(ctx, mongo.IndexModel{
				Keys: bson.D{{Key: "conversation_id", Value: 1}, {Key: "tenant_id", Value: 1}, {Key: "created_at", Value: -1}}, Options: options.Index().SetName("conversation_tenant_created"),
			})
		}
		logged := log.String()[before:]
		_ = db.Close(ctx) // FerretDB answers the driver's endSessions with an error, and logs it
		store.Close()
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if logged != "" {
			t.Errorf("run %d: the store logged warnings:\n%.2000s", run, logged)
		}
		slices.Sort(names)
		if !slices.Equal(names, want) {
			t.Errorf("run %d: messages indexes %v, want %v", run, names, want)
		}
	}
}

func indexNames(ctx context.Context, db *persistence.Mongo, coll string) ([]string, error) {
	var specs []struct {
		Name string `bson:"name"`
	}
	cur, err := db.Collection(coll).Indexes().List(ctx)
	if err == nil {
		err = cur.All(ctx, &specs)
	}
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.Name)
	}
	return names, err
}
