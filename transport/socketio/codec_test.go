package socketio

import (
	"bytes"
	"errors"
	"testing"

	"github.com/caasd/caasd/internal/wire"
)

func TestDecodeEIOPacket(t *testing.T) {
	for _, tc := range []struct {
		in     string
		base64 bool
		typ    byte
		data   string
		binary bool
		err    bool
	}{
		{in: "4hello", typ: eioMessage, data: "hello"},
		{in: "2probe", typ: eioPing, data: "probe"},
		{in: "3", typ: eioPong},
		{in: "1", typ: eioClose},
		{in: "5", typ: eioUpgrade},
		{in: "6", typ: eioNoop},
		{in: "0{}", typ: eioOpen, data: "{}"},
		{in: "bAQIDBA==", base64: true, typ: eioMessage, data: "\x01\x02\x03\x04", binary: true},
		{in: "bAQIDBA==", err: true},          // base64 only in polling payloads
		{in: "b!!!", base64: true, err: true}, // bad base64
		{in: "", err: true},                   // empty
		{in: "7", err: true},                  // unknown type
		{in: "abc", err: true},                // not a packet
		{in: "\x1e4", err: true},              // separator is no type
		{in: "44{\"a\":1}", typ: eioMessage, data: `4{"a":1}`},
	} {
		p, err := decodeEIOPacket([]byte(tc.in), tc.base64)
		if tc.err {
			if !errors.Is(err, ErrMalformedPacket) {
				t.Errorf("%q: err %v, want ErrMalformedPacket", tc.in, err)
			}
			continue
		}
		if err != nil || p.Type != tc.typ || string(p.Data) != tc.data || p.Binary != tc.binary {
			t.Errorf("%q: got %c %q binary=%v err %v", tc.in, p.Type, p.Data, p.Binary, err)
		}
	}
}

func TestDecodePayload(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // type byte + data of each packet
		err  bool
	}{
		{in: "4hello", want: []string{"4hello"}},
		{in: "42[\"a\"]\x1e42[\"b\"]\x1e3", want: []string{`42["a"]`, `42["b"]`, "3"}},
		{in: "4x\x1ebAQID", want: []string{"4x", "4\x01\x02\x03"}},
		{in: "", err: true},
		{in: "\x1e", err: true},
		{in: "4a\x1e", err: true},
		{in: "\x1e4a", err: true},
		{in: "4a\x1e\x1e4b", err: true},
		{in: "4a\x1ez", err: true},
		{in: "4\xff\xfe", err: true}, // not UTF-8
		{in: string(bytes.Repeat([]byte("6\x1e"), maxPayloadPackets)) + "6", err: true},
	} {
		pkts, err := decodePayload([]byte(tc.in))
		if tc.err {
			if !errors.Is(err, ErrMalformedPacket) {
				t.Errorf("%q: err %v, want ErrMalformedPacket", tc.in, err)
			}
			continue
		}
		if err != nil || len(pkts) != len(tc.want) {
			t.Fatalf("%q: %d packets, err %v; want %d", tc.in, len(pkts), err, len(tc.want))
		}
		for i, p := range pkts {
			if got := string(append([]byte{p.Type}, p.Data...)); got != tc.want[i] {
				t.Errorf("%q packet %d: %q, want %q", tc.in, i, got, tc.want[i])
			}
		}
	}
}

func TestEncodeEngineIO(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{string(appendPayload(nil, []byte("4a"), []byte("2"), []byte(`42["x",1]`))), "4a\x1e2\x1e42[\"x\",1]"},
		{string(appendPayload(nil, []byte("6"))), "6"},
		{string(encodeOpen(handshake{SID: "abc", Upgrades: true, PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000000})),
			`0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`},
		{string(encodeOpen(handshake{SID: "x", PingInterval: 1, PingTimeout: 2, MaxPayload: 3})),
			`0{"sid":"x","upgrades":[],"pingInterval":1,"pingTimeout":2,"maxPayload":3}`},
		{string(encodeHTTPError(eioErrUnknownSID, "Session ID unknown")), `{"code":1,"message":"Session ID unknown"}`},
		{string(appendJSONString(nil, "a\"b\\c\n\x1e\xff")), `"a\"b\\c\u000a\u001e` + "\uFFFD" + `"`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestDecodeSIOPacket(t *testing.T) {
	for _, tc := range []struct {
		in          string
		typ         byte
		ns          string
		id          int64
		attachments int
		data        string
		name, arg   string
		err         bool
	}{
		{in: "0", typ: sioConnect, ns: "/", id: -1},
		{in: `0{"token":"t"}`, typ: sioConnect, ns: "/", id: -1, data: `{"token":"t"}`},
		{in: "0/admin,", typ: sioConnect, ns: "/admin", id: -1},
		{in: `0/admin,{"token":"t"}`, typ: sioConnect, ns: "/admin", id: -1, data: `{"token":"t"}`},
		{in: "0/admin", typ: sioConnect, ns: "/admin", id: -1},
		{in: "1", typ: sioDisconnect, ns: "/", id: -1},
		{in: "1/admin,", typ: sioDisconnect, ns: "/admin", id: -1},
		{in: `2["foo"]`, typ: sioEvent, ns: "/", id: -1, data: `["foo"]`, name: "foo"},
		{in: `2["joinRoom",{"conversation_id":"c"}]`, typ: sioEvent, ns: "/", id: -1, data: `["joinRoom",{"conversation_id":"c"}]`, name: "joinRoom", arg: `{"conversation_id":"c"}`},
		{in: `212["foo",1,2]`, typ: sioEvent, ns: "/", id: 12, data: `["foo",1,2]`, name: "foo", arg: "1"},
		{in: `2/admin,13["foo"]`, typ: sioEvent, ns: "/admin", id: 13, data: `["foo"]`, name: "foo"},
		{in: `0["foo"]`, err: true},
		{in: `312[]`, typ: sioAck, ns: "/", id: 12, data: `[]`},
		{in: `3/admin,13["bar"]`, typ: sioAck, ns: "/admin", id: 13, data: `["bar"]`},
		{in: `4{"message":"no"}`, typ: sioConnectError, ns: "/", id: -1, data: `{"message":"no"}`},
		{in: `51-["baz",{"_placeholder":true,"num":0}]`, typ: sioBinaryEvent, ns: "/", id: -1, attachments: 1, data: `["baz",{"_placeholder":true,"num":0}]`, name: "baz", arg: `{"_placeholder":true,"num":0}`},
		{in: `52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, typ: sioBinaryEvent, ns: "/admin", id: -1, attachments: 2, data: `["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, name: "baz", arg: `{"_placeholder":true,"num":0}`},
		{in: `61-15["bar",{"_placeholder":true,"num":0}]`, typ: sioBinaryAck, ns: "/", id: 15, attachments: 1, data: `["bar",{"_placeholder":true,"num":0}]`},
		{in: "", err: true},
		{in: "7", err: true},
		{in: "x", err: true},
		{in: "2", err: true},                      // EVENT without payload
		{in: "2[]", err: true},                    // empty array
		{in: "2[1]", err: true},                   // name not a string
		{in: `2[""]`, err: true},                  // empty name
		{in: `2{"a":1}`, err: true},               // not an array
		{in: `2["a"`, err: true},                  // bad JSON
		{in: `2["a"]x`, err: true},                // trailing garbage
		{in: `1{}`, err: true},                    // DISCONNECT with payload
		{in: `0[1]`, err: true},                   // CONNECT payload not an object
		{in: `3[]`, err: true},                    // ACK without id
		{in: `31`, err: true},                     // ACK without payload
		{in: `5["a"]`, err: true},                 // BINARY_EVENT without count
		{in: `5x-["a"]`, err: true},               // bad count
		{in: `51`, err: true},                     // count without '-'
		{in: `59999-["a"]`, err: true},            // too many attachments
		{in: `21234567890123456["a"]`, err: true}, // ack id too long
		{in: "2/a\x01b,[\"a\"]", err: true},       // control character in namespace
		{in: `2["` + string(bytes.Repeat([]byte("n"), 65)) + `"]`, err: true}, // name too long
	} {
		p, err := decodeSIOPacket([]byte(tc.in))
		if tc.err {
			if !errors.Is(err, ErrMalformedPacket) {
				t.Errorf("%q: err %v, want ErrMalformedPacket", tc.in, err)
			}
			continue
		}
		if err != nil || p.Type != tc.typ || p.Namespace != tc.ns || p.ID != tc.id || p.Attachments != tc.attachments ||
			string(p.Data) != tc.data || p.Name != tc.name || string(p.Arg) != tc.arg {
			t.Errorf("%q: got %+v (data %s arg %s) err %v", tc.in, p, p.Data, p.Arg, err)
		}
	}
}

func TestEncodeSocketIO(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{string(encodeEvent("room:joined", []byte(`{"a":1}`))), `42["room:joined",{"a":1}]`},
		{string(encodeEvent("x", nil)), `42["x",null]`},
		{string(encodeEvent(`we"ird`, []byte(`1`))), `42["we\"ird",1]`},
		{string(encodeAck(0, []byte(`{"a":1}`))), `430[{"a":1}]`},
		{string(encodeAck(12, nil)), `4312[null]`},
		{string(encodeConnect("abc")), `40{"sid":"abc"}`},
		{string(encodeConnectError("/", wire.CodeUnauthorized, "bad token")),
			`44{"message":"bad token","data":{"code":"unauthorized","message":"bad token"}}`},
		{string(encodeConnectError("/admin", wire.CodeForbidden, "no")),
			`44/admin,{"message":"no","data":{"code":"forbidden","message":"no"}}`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
	// What the encoder writes, the decoder reads back.
	p, err := decodeSIOPacket(encodeEvent("message:new", []byte(`{"seq":3}`))[1:])
	if err != nil || p.Name != "message:new" || string(p.Arg) != `{"seq":3}` {
		t.Fatalf("round trip: %+v %v", p, err)
	}
	p, err = decodeSIOPacket(encodeAck(7, []byte(`{"seq":3}`))[1:])
	if err != nil || p.Type != sioAck || p.ID != 7 || string(p.Data) != `[{"seq":3}]` {
		t.Fatalf("ack round trip: %+v %v", p, err)
	}
}
