package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

var decodeSeeds = []string{
	`{"message_id":"m-1","conversation_id":"c","content":{"type":"text","text":"hello"}}`,
	` { "message_id" : "m" , "content" : { "text" : "a\"b" , "type" : "text" , "x" : [1, {"y": "}"}] } , "conversation_id":"c" } `,
	`{"message_id":"m\u00e9","conversation_id":null,"content":null}`,
	`{"MESSAGE_ID":"m","message_id":"n"}`,
	`{"message_id":5}`,
	`{"message_id":"m"`,
	`[1,2]`,
	`"text"`,
	`{"message_id":"\xff"}`,
	`{"content":{"type":1,"text":true}}`,
	`{"content":{"TYPE":"text","Text":"x"},"extra":{"a":[true,false,null,-1.5e3]}}`,
	`{"message_id":"m","message_id":"n"}`,
	`{}`,
	``,
	`{"event":"joinRoom","data":{"conversation_id":"c"}}`,
	`{"EVENT":"a","Data":[1,{"x":"}"}]}`, `{"event":"a\u0062"}`, "{\"event\":\"\x80\"}",
	`{"message_id":"m","conversation_id":"c","tenant_id":"t","sender_id":"u","content":{"type":"text","text":"hi"},"seq":42,"created_at":"2026-11-28T00:00:00Z"}`,
	`{"seq":-7}`, `{"seq":1.5}`, `{"seq":1e3}`, `{"seq":9223372036854775808}`, `{"seq":null,"SEQ":3}`, `{"seq":"4"}`, `{"Tenant_ID":"x","seq":-0}`,
	`{"data":null,"event":"x","event":"y"}`, ` { "event" : "z" , "data" : "s\"}" } `, `{"event":null}`, `{"event":1}`,
}

// FuzzDecodeSendMessage checks that the scanning decoders (sendMessage,
// content, message:new, the inbound envelope) give what
// json.Unmarshal gives, errors included.
func FuzzDecodeSendMessage(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want SendMessage
		gerr, werr := DecodeSendMessage(data, &got), json.Unmarshal(data, &want)
		if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
			t.Fatalf("DecodeSendMessage(%q): error %v, json.Unmarshal: %v", data, gerr, werr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeSendMessage(%q) = %+v, json.Unmarshal: %+v", data, got, want)
		}
		var gc, wc Content
		gerr, werr = DecodeContent(data, &gc), json.Unmarshal(data, &wc)
		if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() || werr == nil && gc != wc {
			t.Fatalf("DecodeContent(%q) = %+v, %v; json.Unmarshal: %+v, %v", data, gc, gerr, wc, werr)
		}
		var gm, wm MessageNew
		gerr, werr = DecodeMessageNew(data, &gm), json.Unmarshal(data, &wm)
		if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() || werr == nil && !reflect.DeepEqual(gm, wm) {
			t.Fatalf("DecodeMessageNew(%q) = %+v, %v; json.Unmarshal: %+v, %v", data, gm, gerr, wm, werr)
		}
		var gi, wi Inbound
		gerr, werr = DecodeInbound(data, &gi), json.Unmarshal(data, &wi)
		if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() || werr == nil && !reflect.DeepEqual(gi, wi) {
			t.Fatalf("DecodeInbound(%q) = %+v, %v; json.Unmarshal: %+v, %v", data, gi, gerr, wi, werr)
		}
	})
}
