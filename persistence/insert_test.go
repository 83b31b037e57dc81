package persistence

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/internal/testenv"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestInsertDocsSplitsAndReportsDuplicates inserts, into FerretDB, a batch
// that needs three commands at the byte bound given, two of whose
// documents are already stored: every new document lands once, and the
// two come back as duplicates at their indexes in the whole batch, not in
// their command.
func TestInsertDocsSplitsAndReportsDuplicates(t *testing.T) {
	ctx := context.Background()
	db := freshStore(t)
	coll := db.Collection(CollMessages)

	doc := func(i int) bson.Raw {
		t.Helper()
		b, err := bson.Marshal(bson.D{{Key: "_id", Value: fmt.Sprintf("t:m-%02d", i)}, {Key: "seq", Value: i}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := insertDocs(ctx, coll, []bson.Raw{doc(3), doc(7)}, insertCommandBytes); err != nil {
		t.Fatal(err)
	}
	var batch []bson.Raw
	for i := range 10 {
		batch = append(batch, doc(i))
	}
	// Four documents a command: 0–3, 4–7, 8–9.
	failed, err := insertDocs(ctx, coll, batch, 4*len(batch[0]))
	if err != nil {
		t.Fatal(err)
	}
	var dups []int
	for _, f := range failed {
		if !duplicateKey(f.Code) {
			t.Errorf("document %d failed with code %d (%s), want a duplicate", f.Index, f.Code, f.Message)
		}
		dups = append(dups, f.Index)
	}
	if !slices.Equal(dups, []int{3, 7}) {
		t.Errorf("duplicates at %v, want [3 7]", dups)
	}
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var stored []struct {
		ID  string `bson:"_id"`
		Seq int    `bson:"seq"`
	}
	if err := cur.All(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for _, s := range stored {
		seen[s.Seq]++
	}
	for i := range 10 {
		if seen[i] != 1 {
			t.Errorf("document %d stored %d times, want once", i, seen[i])
		}
	}
	if len(stored) != 10 {
		t.Errorf("%d documents stored, want 10", len(stored))
	}
}

// TestInsertDocsReturnsTheCommandsError: a command the server refuses as
// a whole is an error, not a list of per-document failures, so that the
// persister retries the batch instead of failing its messages.
func TestInsertDocsReturnsTheCommandsError(t *testing.T) {
	ctx := context.Background()
	db := freshStore(t)
	doc, err := bson.Marshal(bson.D{{Key: "_id", Value: "t:m"}})
	if err != nil {
		t.Fatal(err)
	}
	failed, err := insertDocs(ctx, db.Collection("bad$name"), []bson.Raw{doc}, insertCommandBytes)
	if err == nil || failed != nil {
		t.Fatalf("insert into an invalid namespace: failed %v, err %v; want an error alone", failed, err)
	}
	t.Logf("refused: %v", err)
}

// freshStore starts an empty FerretDB for t and connects to it.
func freshStore(t testing.TB) *Mongo {
	t.Helper()
	store, err := embedded.StartMongo(t.TempDir(), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), embedded.Quiet(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	db, err := ConnectMongo(context.Background(), store.URI(), "caas")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	return db
}
