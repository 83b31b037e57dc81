package wire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var scanSeeds = []string{
	`0`, `-0`, `-`, `01`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-05`, `1e`, `1e+`, `-1.25e3`, `2.`, `00`, `-01`, `1x`,
	`true`, `tru`, `false`, `fals`, `null`, `nul`, `nulll`, `True`,
	`""`, `"a"`, `"a\"b"`, `"\u00e9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, "\"\t\"", "\"\x7f\"", "\"\xff\xfe\"", `"\/\b\f\n\r\t\\"`, `"`, `"\`,
	`{}`, `[]`, `{ }`, `[ ]`, `{"a":1}`, `{"a":1,}`, `[1,]`, `[,1]`, `{"a" 1}`, `{a:1}`, `{"a":}`, `{"a":1 "b":2}`, `[1 2]`,
	` {"a" : [1, {"b": null}] , "c":"}"} `, `{"a":1}}`, `{"a":1} x`, `[[[[]]]]`, `[[[[]]]`, "\n[\r1\t]\n",
	strings.Repeat("[", maxScanDepth) + strings.Repeat("]", maxScanDepth),
	strings.Repeat("[", maxScanDepth+1) + strings.Repeat("]", maxScanDepth+1),
}

// FuzzValueEnd checks the scanner's syntax check against json.Valid: what
// it accepts, encoding/json accepts, and what encoding/json accepts, it
// accepts unless it nests deeper than maxScanDepth.
func FuzzValueEnd(f *testing.F) {
	for _, s := range append(scanSeeds, decodeSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := skipSpace(data, 0)
		end := valueEnd(data, p, 0)
		ok := end >= 0 && skipSpace(data, end) == len(data)
		valid := json.Valid(data)
		if ok && !valid {
			t.Fatalf("valueEnd accepts %q, json.Valid does not", data)
		}
		deep := bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) > maxScanDepth
		if valid && !ok && !deep {
			t.Fatalf("json.Valid accepts %q, valueEnd does not (end %d)", data, end)
		}
	})
}

// TestScanObjectTakesTheUsualFrameInOnePass: a client's usual frame is read
// by the scan, not handed to encoding/json.
func TestScanObjectTakesTheUsualFrameInOnePass(t *testing.T) {
	for _, s := range []string{
		`{"event":"sendMessage","data":{"message_id":"m-1","conversation_id":"c-1","content":{"type":"text","text":"hello \u00e9 \"there\""}}}`,
		`{"message_id":"m-1","conversation_id":"c-1","content":{"type":"text","text":"hello"},"reply_to":null,"n":[1,-2.5e3,true,false]}`,
		`{"type":"text","text":"x"}`,
	} {
		var keys []string
		if !scanObject([]byte(s), func(key, _ []byte) bool { keys = append(keys, string(key)); return true }) {
			t.Errorf("scanObject refused %s", s)
		}
		if len(keys) < 2 {
			t.Errorf("scanObject(%s) saw keys %v", s, keys)
		}
	}
}

func BenchmarkDecodeSendMessageFrame(b *testing.B) {
	frame := []byte(`{"event":"sendMessage","data":{"message_id":"ld|3|1764282000000000000|12345","conversation_id":"room-123","content":{"type":"text","text":"` + strings.Repeat("lorem ipsum ", 30) + `"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		var in Inbound
		var m SendMessage
		var c Content
		if DecodeInbound(frame, &in) != nil || DecodeSendMessage(in.Data, &m) != nil || DecodeContent(m.Content, &c) != nil {
			b.Fatal("decode failed")
		}
	}
}
