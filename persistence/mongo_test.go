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
)

// TestEnsureIndexesOnAFreshStoreAndAgain: on an empty FerretDB the indexes
// are created without one warning in the store's log (it logs every error
// it answers, such as listing the indexes of a collection that does not
// exist), and a second run, after a restart of the store on its data,
// finds them and creates none again.
func TestEnsureIndexesOnAFreshStoreAndAgain(t *testing.T) {
	ctx := context.Background()
	dir, addr := t.TempDir(), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	var log testenv.SyncBuffer
	logger := embedded.Quiet(slog.New(slog.NewTextHandler(&log, nil)))
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
			var specs []struct {
				Name string `bson:"name"`
			}
			cur, lerr := db.Collection(persistence.CollMessages).Indexes().List(ctx)
			if lerr == nil {
				lerr = cur.All(ctx, &specs)
			}
			err = lerr
			for _, s := range specs {
				names = append(names, s.Name)
			}
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
		for _, want := range []string{"tenant_message_id_unique", "conversation_tenant_created", "tenant_conversation_seq"} {
			if !slices.Contains(names, want) {
				t.Errorf("run %d: messages indexes %v lack %s", run, names, want)
			}
		}
	}
}
