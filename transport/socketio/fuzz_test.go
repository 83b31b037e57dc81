package socketio

import (
	"bytes"
	"testing"
)

// FuzzDecodePayload feeds the Engine.IO long-polling payload decoder.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{
		"4hello", "2probe", "3", "1", "6", "5", "0{}",
		"42[\"a\"]\x1e42[\"b\"]\x1e3", "4x\x1ebAQIDBA==", `40{"token":"abc"}`,
		"", "\x1e", "4a\x1e", "\x1e\x1e", "b", "b!!", "7", "abc", "4\xff", "6\x1e6\x1e6",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pkts, err := decodePayload(body)
		if err != nil {
			return
		}
		if len(pkts) == 0 || len(pkts) > maxPayloadPackets {
			t.Fatalf("%d packets without error", len(pkts))
		}
		for _, p := range pkts {
			if p.Type < eioOpen || p.Type > eioNoop {
				t.Fatalf("packet type %q", p.Type)
			}
			if !p.Binary && bytes.IndexByte(p.Data, payloadSep) >= 0 {
				t.Fatalf("separator inside packet %q", p.Data)
			}
		}
	})
}

// FuzzDecodeSIOPacket feeds the Socket.IO packet decoder.
func FuzzDecodeSIOPacket(f *testing.F) {
	for _, s := range []string{
		"0", `0{"token":"t"}`, "0/admin,", `0/admin,{"token":"t"}`, "1", "1/admin,",
		`2["foo"]`, `212["foo",{"a":[1,2]}]`, `2/admin,13["foo"]`, `312[]`, `3/admin,13["bar"]`,
		`4{"message":"no"}`, `51-["baz",{"_placeholder":true,"num":0}]`, `61-15["bar",{"_placeholder":true,"num":0}]`,
		"", "7", "2", "2[]", "2[1]", `2{"a":1}`, `2["a"`, `1{}`, `3[]`, `5x-["a"]`, `59999-["a"]`,
		`21234567890123456["a"]`, "2/a\x01b,[\"a\"]", "0/", "2/,", "22", "2-1[\"a\"]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeSIOPacket(b)
		if err != nil {
			return
		}
		if p.Type > sioBinaryAck || p.Namespace == "" || p.ID < -1 || p.Attachments < 0 || p.Attachments > maxAttachments {
			t.Fatalf("bad packet %+v from %q", p, b)
		}
		if p.Type == sioEvent || p.Type == sioBinaryEvent {
			if p.Name == "" || len(p.Name) > maxEventNameLen {
				t.Fatalf("event name %q from %q", p.Name, b)
			}
			// Re-encoded, the event decodes to the same name and argument.
			q, err := decodeSIOPacket(encodeEvent(p.Name, p.Arg)[1:])
			if err != nil || q.Name != p.Name || (len(p.Arg) > 0 && !bytes.Equal(q.Arg, p.Arg)) {
				t.Fatalf("round trip of %q: %+v %v", b, q, err)
			}
		}
	})
}
