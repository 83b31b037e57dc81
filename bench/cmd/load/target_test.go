package main

import (
	"strings"
	"testing"
	"time"
)

// TestProtocolsRecordWhatTheirServersSend feeds each protocol the frames
// its server writes (as seen on the wire from Socket.IO 4.8.4 and
// Centrifugo 6.9.1) with the chat message its appendSend made.
func TestProtocolsRecordWhatTheirServersSend(t *testing.T) {
	now := time.Now().UnixNano()
	sent := now - int64(40*time.Millisecond)
	id := "ld|1|" + itoa(sent) + "|x.7"
	chat := string(appendChat(nil, "r1", []byte(id)))
	for _, c := range []struct {
		name                string
		proto               protocol
		frames              []string
		delivered, accepted uint64
		failed, errs        int64
		joined              string // "ok", an error's text, or "" for no answer
	}{
		{"socketio delivery", socketIOProtocol{}, []string{`42["message:new",` + chat + `]`}, 1, 0, 0, 0, ""},
		{"socketio open and connect", socketIOProtocol{}, []string{`0{"sid":"J1","upgrades":[],"pingInterval":25000}`, `40{"sid":"pN"}`}, 0, 0, 0, 0, "ok"},
		{"socketio joined", socketIOProtocol{}, []string{`42["room:joined",{"conversation_id":"r1"}]`}, 0, 0, 0, 0, "ok"},
		{"socketio refused", socketIOProtocol{}, []string{`44{"message":"invalid token"}`}, 0, 0, 0, 1, "connect refused: invalid token"},
		{"socketio failed", socketIOProtocol{}, []string{`42["message:failed",{"message":"not in this room"}]`}, 0, 0, 1, 0, ""},
		{"centrifugo connect and subscribe", centrifugoProtocol{}, []string{`{"id":1,"connect":{"client":"d8","ping":25,"pong":true}}` + "\n" + `{"id":2,"subscribe":{}}`}, 0, 0, 0, 0, "ok"},
		{"centrifugo push, reply and error in one frame", centrifugoProtocol{}, []string{
			`{"push":{"channel":"r1","pub":{"data":` + chat + `,"info":{"user":"u1","client":"d8"}}}}` + "\n" +
				`{"id":3,"publish":{}}` + "\n" + `{"id":4,"error":{"code":103,"message":"permission denied"}}`}, 1, 0, 1, 0, ""},
		{"centrifugo subscribe refused", centrifugoProtocol{}, []string{`{"id":1,"connect":{}}` + "\n" + `{"id":2,"error":{"code":103,"message":"permission denied"}}`}, 0, 0, 0, 1, "centrifugo: permission denied"},
		{"caasd delivery", caasdProtocol{}, []string{`{"event":"message:new","data":` + chat[:len(chat)-1] + `,"seq":3}}`}, 1, 0, 0, 0, ""},
	} {
		r := newRecorder()
		cn := &conn{proto: c.proto, rec: r, joined: make(chan error, 1)}
		for _, f := range c.frames {
			c.proto.frame(r, cn, []byte(f), now, now)
		}
		st := &r.steps[1]
		if st.delivered.Count() != c.delivered || r.failed.Load() != c.failed || r.errs.Load() != c.errs {
			t.Errorf("%s: delivered %d failed %d errors %d, want %d %d %d", c.name,
				st.delivered.Count(), r.failed.Load(), r.errs.Load(), c.delivered, c.failed, c.errs)
		}
		if c.delivered > 0 {
			if q := st.delivered.Quantile(0.5); q < 30 || q > 60 {
				t.Errorf("%s: latency %v ms, want about 40", c.name, q)
			}
		}
		var joined string
		select {
		case err := <-cn.joined:
			joined = "ok"
			if err != nil {
				joined = err.Error()
			}
		default:
		}
		if joined != c.joined {
			t.Errorf("%s: join answer %q, want %q", c.name, joined, c.joined)
		}
	}
}

// TestProtocolsSendAChatMessage: each send frame carries the message id
// where the recorder looks for it once the server sends it on, and
// Centrifugo's publishes count their ids on from the subscribe.
func TestProtocolsSendAChatMessage(t *testing.T) {
	id := []byte("ld|2|123|t.1")
	for _, c := range []struct {
		proto protocol
		want  []string
	}{
		{caasdProtocol{}, []string{`{"event":"sendMessage","data":{"message_id":"ld|2|123|t.1","conversation_id":"r9","content":{"type":"text","text":"ld|2|123|t.1"}}}`}},
		{socketIOProtocol{}, []string{`42["sendMessage",{"message_id":"ld|2|123|t.1","conversation_id":"r9","content":{"type":"text","text":"ld|2|123|t.1"}}]`}},
		{centrifugoProtocol{}, []string{
			`{"id":3,"publish":{"channel":"r9","data":{"message_id":"ld|2|123|t.1","conversation_id":"r9","content":{"type":"text","text":"ld|2|123|t.1"}}}}`,
			`{"id":4,"publish":{"channel":"r9","data":{"message_id":"ld|2|123|t.1",`,
		}},
	} {
		cn := &conn{proto: c.proto, cmdID: cfSubscribeID}
		for i, want := range c.want {
			got := string(c.proto.appendSend(cn, nil, "r9", id))
			if !strings.HasPrefix(got, want) {
				t.Errorf("%T send %d:\n got %s\nwant %s", c.proto, i, got, want)
			}
		}
	}
}
