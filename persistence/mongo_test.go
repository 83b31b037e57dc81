package persistence_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/persistence"
)

// lockedBuffer is a log sink FerretDB's goroutines may write to at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEnsureIndexesOnAFreshStoreAndAgain: on an empty FerretDB the indexes
// are created without one warning in the store's log (it logs every error
// it answers, such as listing the indexes of a collection that does not
// exist), and a second run, after a restart of the store on its data,
// finds them and creates none again.
func TestEnsureIndexesOnAFreshStoreAndAgain(t *testing.T) {
	ctx := context.Background()
	dir, addr := t.TempDir(), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	var log lockedBuffer
	logger := embedded.Quiet(slog.New(slog.NewTextHandler(&log, nil)))
	for run := range 2 {
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
		logged := log.String()
		_ = db.Close(ctx) // FerretDB answers the driver's endSessions with an error, and logs it
		store.Close()
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if logged != "" {
			t.Errorf("run %d: the store logged warnings:\n%.2000s", run, logged)
		}
		log.reset()
		for _, want := range []string{"tenant_message_id_unique", "conversation_tenant_created", "tenant_conversation_seq"} {
			if !slices.Contains(names, want) {
				t.Errorf("run %d: messages indexes %v lack %s", run, names, want)
			}
		}
	}
}
