package wire

import (
	"encoding/json"
	"math"
	"testing"
)

// FuzzAppendJSON checks that the reflection-free encoders write exactly
// what encoding/json writes for the same payload.
func FuzzAppendJSON(f *testing.F) {
	f.Add("m-1", "c-1", "t", "alice", `{"type":"text","text":"hi"}`, int64(7), "2026-11-27T00:00:00.000Z")
	f.Add(`m"<&>`, "c\u2028", "t\x01", "ä", `{"text": "a <b> & \u2028"}`, int64(-1), "")
	f.Add("\xff", "", "", "", `[1, 2 ,{"a":null}]`, int64(1<<62), "\\")
	f.Add("x", "y", "z", "w", "", int64(0), "t")
	f.Fuzz(func(t *testing.T, id, conv, tenant, sender, content string, seq int64, at string) {
		if content != "" && !json.Valid([]byte(content)) {
			return // content is valid JSON wherever a MessageNew is made
		}
		var raw json.RawMessage // nil: a message without content
		if content != "" {
			raw = json.RawMessage(content)
		}
		for _, v := range []any{
			MessageNew{MessageID: id, ConversationID: conv, TenantID: tenant, SenderID: sender, Content: raw, Seq: seq, CreatedAt: at},
			MessageAccepted{MessageID: id, ConversationID: conv, Seq: seq},
			MessagePersisted{MessageID: id, ConversationID: conv, Seq: seq, PersistedAt: at},
		} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			if got := Marshal(v); string(got) != string(want) {
				t.Fatalf("%T:\n got %s\nwant %s", v, got, want)
			}
		}
	})
}

// TestJSONSizeHint checks that a message of plain identifiers, the usual
// kind, encodes in the one allocation its size hint makes.
func TestJSONSizeHint(t *testing.T) {
	const at = "2026-11-27T00:00:00.000Z"
	for _, v := range []appender{
		MessageNew{MessageID: "ld|1|1764200000000000000|abc.r.123", ConversationID: "c-1234", TenantID: "acme", SenderID: "u-12",
			Content: json.RawMessage(`{"type":"text","text":"hello"}`), Seq: math.MaxInt64, CreatedAt: at},
		MessageAccepted{MessageID: "m", ConversationID: "c", Seq: math.MinInt64},
		MessagePersisted{MessageID: "m", ConversationID: "c", Seq: math.MinInt64, PersistedAt: at},
	} {
		if n := len(v.AppendJSON(nil)); n > v.jsonSize() {
			t.Errorf("%T encodes in %d bytes, its hint is %d", v, n, v.jsonSize())
		}
	}
}
