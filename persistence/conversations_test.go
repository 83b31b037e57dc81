package persistence_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/persistence"
)

// startFerret starts the embedded FerretDB on a temp dir and connects to
// it; both stop with the test.
func startFerret(tb testing.TB) *persistence.Mongo {
	tb.Helper()
	ctx := context.Background()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(tb))
	store, err := embedded.StartMongo(tb.TempDir(), addr, embedded.Quiet(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(store.Close)
	db, err := persistence.ConnectMongo(ctx, store.URI(), "caas")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close(context.Background()) })
	return db
}

// TestMaxSeqLooksAtMessagesOnlyForConversationsWithOne: a conversation
// without last_message_at has no stored message (the persister sets it
// before storing the first), so MaxSeq answers 0 without the look at the
// messages that FerretDB makes a scan of them all. The message planted
// here for such a conversation shows which way MaxSeq went: it is found
// only when the conversation has last_message_at, or has no document.
func TestMaxSeqLooksAtMessagesOnlyForConversationsWithOne(t *testing.T) {
	ctx := context.Background()
	db := startFerret(t)
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	convs := db.Collection(persistence.CollConversations)
	msgs := db.Collection(persistence.CollMessages)
	seed := func(tb testing.TB, conv string, lastMessageAt bool, seqs ...int64) {
		tb.Helper()
		doc := bson.D{{Key: "_id", Value: "acme/" + conv}, {Key: "tenant_id", Value: "acme"}}
		if lastMessageAt {
			doc = append(doc, bson.E{Key: "last_message_at", Value: at})
		}
		if conv != "no-doc" {
			if _, err := convs.InsertOne(ctx, doc); err != nil {
				tb.Fatal(err)
			}
		}
		for _, seq := range seqs {
			id := fmt.Sprintf("%s-%d", conv, seq)
			if _, err := msgs.InsertOne(ctx, bson.D{{Key: "_id", Value: "acme/" + id}, {Key: "message_id", Value: id},
				{Key: "tenant_id", Value: "acme"}, {Key: "conversation_id", Value: conv}, {Key: "seq", Value: seq}}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	cases := []struct {
		conv          string
		lastMessageAt bool
		seqs          []int64
		want          int64
	}{
		{"new", false, nil, 0},
		{"unmarked", false, []int64{7}, 0},
		{"marked", true, []int64{3, 9, 5}, 9},
		{"marked-empty", true, nil, 0},
		{"no-doc", false, []int64{4}, 4},
	}
	for _, tc := range cases {
		seed(t, tc.conv, tc.lastMessageAt, tc.seqs...)
	}
	s := persistence.NewConversations(db, nil, time.Minute, nil)
	for _, tc := range cases {
		got, err := s.MaxSeq(ctx, "acme", tc.conv)
		if err != nil {
			t.Fatalf("%s: %v", tc.conv, err)
		}
		if got != tc.want {
			t.Errorf("%s: MaxSeq %d, want %d", tc.conv, got, tc.want)
		}
	}
	if got, err := s.MaxSeq(ctx, "other", "marked"); err != nil || got != 0 {
		t.Errorf("another tenant's conversation of the same id: MaxSeq %d, %v; want 0", got, err)
	}
}
