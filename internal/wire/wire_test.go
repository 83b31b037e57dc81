package wire

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestWithSeqIsMarshal(t *testing.T) {
	contents := []string{
		`{"type":"text","text":"hi"}`,
		`{"type":"text","text":",\"seq\":0,\"created_at\":"}`,
		`{"type":"text", "text":"<b>&</b>", "extra": [1, 2, {"seq":0}]}`,
	}
	for _, c := range contents {
		for _, seq := range []int64{0, 1, 42, 1 << 40} {
			m := MessageNew{MessageID: "m", ConversationID: "c", TenantID: "t", SenderID: "u", Content: json.RawMessage(c), CreatedAt: "2026-01-01T00:00:00.000Z"}
			body := Marshal(m)
			m.Seq = seq
			if got, want := WithSeq(body, seq), Marshal(m); !bytes.Equal(got, want) {
				t.Fatalf("WithSeq(%s, %d) = %s, want %s", body, seq, got, want)
			}
		}
	}
}
