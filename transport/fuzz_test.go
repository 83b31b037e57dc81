package transport

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeNative feeds the native protocol's frame decoder.
func FuzzDecodeNative(f *testing.F) {
	for _, s := range []string{
		`{"event":"joinRoom","data":{"conversation_id":"c"}}`,
		`{"event":"sendMessage","data":{"message_id":"m","conversation_id":"c","content":{"type":"text","text":"hi"}}}`,
		`{"event":"leaveRoom"}`, `{"event":""}`, `{"data":1}`, `{}`, `[]`, `null`, ``, `{`, `{"event":1}`,
		`{"event":"` + string(make([]byte, 70)) + `"}`, `{"EVENT":"a","Data":[1,{"x":"}"}]}`, `{"event":"a\u0062"}`,
		`{"data":null,"event":"x","event":"y"}`, ` { "event" : "z" , "data" : "s\"}" } `, `{"event":null}`, "{\"event\":\"a\",\"data\":\xff}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		name, data, err := DecodeNative(frame)
		if err != nil {
			return
		}
		if name == "" || len(name) > 64 {
			t.Fatalf("event name %q accepted", name)
		}
		if len(data) > 0 && !json.Valid(data) {
			t.Fatalf("invalid data %q accepted", data)
		}
	})
}
