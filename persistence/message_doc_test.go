package persistence

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/caasd/caasd/internal/wire"
)

// decodeM decodes a document with every embedded document as a bson.M, so
// that documents whose members differ only in order compare equal.
func decodeM(tb testing.TB, raw bson.Raw) bson.M {
	tb.Helper()
	dec := bson.NewDecoder(bson.NewDocumentReader(bytes.NewReader(raw)))
	dec.DefaultDocumentM()
	var m bson.M
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decode %v: %v", raw, err)
	}
	return m
}

func docKeys(tb testing.TB, raw bson.Raw) []string {
	tb.Helper()
	elems, err := raw.Elements()
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = e.Key()
	}
	return out
}

// TestMessageDocumentIsWhatTheEncoderWrites checks the one-pass document
// against encoding/json and the BSON encoder: the same fields in the same
// order and the same values, for content of every kind, JSON or not.
func TestMessageDocumentIsWhatTheEncoderWrites(t *testing.T) {
	created := time.Date(2026, 11, 28, 1, 2, 3, 456789123, time.UTC)
	persisted := created.Add(1500 * time.Millisecond)
	for _, content := range []string{
		`{"type":"text","text":"hello é"}`,
		`{"type":"image","url":"u","size":[640,480.5],"meta":{"alt":"a\"b","ok":true,"none":null}}`,
		`"plain"`, `7`, `[]`, `null`,
		`{"a":1,"a":2}`, // a repeated key: the slow way, a map's last
		`{"x":1e400}`,   // out of range: stored as the text
		`not json`, ``,
	} {
		msg := &wire.MessageNew{
			MessageID: "m-1", ConversationID: "c-1", TenantID: "t-1", SenderID: "u-1",
			Content: json.RawMessage(content), Seq: 42, CreatedAt: created.Format(TimeFormat),
		}
		got, err := messageDocument(msg, created, persisted)
		if err != nil {
			t.Fatalf("content %s: %v", content, err)
		}
		want, err := messageDocSlow(msg, created, persisted)
		if err != nil {
			t.Fatalf("content %s: slow way: %v", content, err)
		}
		if g, w := docKeys(t, got), docKeys(t, want); !reflect.DeepEqual(g, w) {
			t.Errorf("content %s: fields %v, the encoder's %v", content, g, w)
		}
		if g, w := decodeM(t, got), decodeM(t, want); !reflect.DeepEqual(g, w) {
			t.Errorf("content %s: %v, the encoder's %v", content, g, w)
		}
	}
}

// BenchmarkMessageDocument compares the one-pass document with the way
// through encoding/json and the BSON encoder, for a text message.
func BenchmarkMessageDocument(b *testing.B) {
	msg := &wire.MessageNew{
		MessageID: "m-7f3a-0001", ConversationID: "conv-001", TenantID: "tenant-a", SenderID: "user-42",
		Content: json.RawMessage(`{"type":"text","text":"` + string(bytes.Repeat([]byte("hello "), 60)) + `"}`),
		Seq:     1234, CreatedAt: "2026-11-28T01:02:03.456789123Z",
	}
	now := time.Now()
	for _, c := range []struct {
		name string
		enc  func(*wire.MessageNew, time.Time, time.Time) (bson.Raw, error)
	}{{"one-pass", messageDocument}, {"encoder", messageDocSlow}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.enc(msg, now, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
