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

// TestSeqFloorLooksAtMessagesOnlyForSequencedConversations: a
// conversation that was never sequenced (no mark, no last_message_at) has
// no message, so SeqFloor marks it and answers 0 without the look at the
// messages that FerretDB makes a scan of them all. The message planted here
// for such a conversation shows which way SeqFloor went: it is found only
// when the conversation is marked, has last_message_at (stored before the
// marks existed), or has no document.
func TestSeqFloorLooksAtMessagesOnlyForSequencedConversations(t *testing.T) {
	ctx := context.Background()
	db := startFerret(t)
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	convs := db.Collection(persistence.CollConversations)
	msgs := db.Collection(persistence.CollMessages)
	cases := []struct {
		conv          string
		sequenced     bool
		lastMessageAt bool
		seqs          []int64
		want          int64
	}{
		{"new", false, false, nil, 0},
		{"unmarked", false, false, []int64{7}, 0},
		{"sequenced", true, false, []int64{3, 9, 5}, 9},
		{"sequenced-empty", true, false, nil, 0},
		{"before-marks", false, true, []int64{6}, 6},
		{"no-doc", false, false, []int64{4}, 4},
	}
	for _, tc := range cases {
		doc := bson.D{{Key: "_id", Value: "acme/" + tc.conv}, {Key: "tenant_id", Value: "acme"}}
		if tc.sequenced {
			doc = append(doc, bson.E{Key: "sequenced", Value: true})
		}
		if tc.lastMessageAt {
			doc = append(doc, bson.E{Key: "last_message_at", Value: at})
		}
		if tc.conv != "no-doc" {
			if _, err := convs.InsertOne(ctx, doc); err != nil {
				t.Fatal(err)
			}
		}
		for _, seq := range tc.seqs {
			id := fmt.Sprintf("%s-%d", tc.conv, seq)
			if _, err := msgs.InsertOne(ctx, bson.D{{Key: "_id", Value: "acme/" + id}, {Key: "message_id", Value: id},
				{Key: "tenant_id", Value: "acme"}, {Key: "conversation_id", Value: tc.conv}, {Key: "seq", Value: seq}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := persistence.NewConversations(db, nil, time.Minute, nil)
	for _, tc := range cases {
		got, err := s.SeqFloor(ctx, "acme", tc.conv)
		if err != nil {
			t.Fatalf("%s: %v", tc.conv, err)
		}
		if got != tc.want {
			t.Errorf("%s: SeqFloor %d, want %d", tc.conv, got, tc.want)
		}
	}
	// The never-sequenced ones are marked now: their messages from here on
	// are looked for.
	for _, conv := range []string{"new", "unmarked"} {
		var doc struct {
			Sequenced bool `bson:"sequenced"`
		}
		if err := convs.FindOne(ctx, bson.D{{Key: "_id", Value: "acme/" + conv}}).Decode(&doc); err != nil || !doc.Sequenced {
			t.Fatalf("%s not marked sequenced (%v)", conv, err)
		}
	}
	if got, err := s.SeqFloor(ctx, "acme", "unmarked"); err != nil || got != 7 {
		t.Errorf("unmarked after its mark: SeqFloor %d, %v; want 7", got, err)
	}
	if got, err := s.SeqFloor(ctx, "other", "sequenced"); err != nil || got != 0 {
		t.Errorf("another tenant's conversation of the same id: SeqFloor %d, %v; want 0", got, err)
	}
}
