package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Servers the load tool can drive. caasd is what is measured; the other two
// are measured side by side with the same scenarios, load and machine
// (bench/compare.sh): each speaks its own protocol, doing what a chat needs
// of it (authenticate, join a room, send to it, receive what it sends).
const (
	targetCaasd      = "caasd"
	targetSocketIO   = "socketio"
	targetCentrifugo = "centrifugo"
)

// protocol is how a conn speaks to one kind of server.
type protocol interface {
	// url is the WebSocket URL of a user with token.
	url(addr, token string, batch bool) string
	// join authenticates c where the server wants it in a frame, joins
	// room conv, and waits for the server's answer.
	join(ctx context.Context, c *conn, conv string, timeout time.Duration) error
	// appendSend appends to b the frame that sends a chat message to conv
	// whose id and text are id.
	appendSend(c *conn, b []byte, conv string, id []byte) []byte
	// frame records one frame c received.
	frame(r *recorder, c *conn, b []byte, arrived, read int64)
}

func newProtocol(target string) (protocol, error) {
	switch target {
	case targetCaasd:
		return caasdProtocol{}, nil
	case targetSocketIO:
		return socketIOProtocol{}, nil
	case targetCentrifugo:
		return centrifugoProtocol{}, nil
	}
	return nil, fmt.Errorf("-target: unknown %q (caasd, socketio or centrifugo)", target)
}

// waitJoined waits for c's join answer.
func waitJoined(ctx context.Context, c *conn, what string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-c.joined:
		return err
	case <-t.C:
		return fmt.Errorf("%s: no answer within %s", what, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// signal hands err to whoever waits on ch, without blocking.
func signal(ch chan error, err error) {
	select {
	case ch <- err:
	default:
	}
}

// appendChat appends the chat message object every target receives: the
// fields of caasd's sendMessage data, message_id first (the recorder finds
// it right after the event's name).
func appendChat(b []byte, conv string, id []byte) []byte {
	b = append(b, `{"message_id":"`...)
	b = append(b, id...)
	b = append(b, `","conversation_id":"`...)
	b = append(b, conv...)
	b = append(b, `","content":{"type":"text","text":"`...)
	b = append(b, id...)
	return append(b, `"}}`...)
}

// caasdProtocol is caasd's native protocol: the token in the URL, one event
// object per frame (or an array of them with batch=1).
type caasdProtocol struct{}

func (caasdProtocol) url(addr, token string, batch bool) string {
	u := "ws://" + addr + "/ws?token=" + token
	if batch {
		u += "&batch=1"
	}
	return u
}

func (caasdProtocol) join(ctx context.Context, c *conn, conv string, timeout time.Duration) error {
	if err := c.ws.WriteString(`{"event":"joinRoom","data":{"conversation_id":"` + conv + `"}}`); err != nil {
		return fmt.Errorf("joinRoom: %w", err)
	}
	return waitJoined(ctx, c, "joinRoom "+conv, timeout)
}

func (caasdProtocol) appendSend(_ *conn, b []byte, conv string, id []byte) []byte {
	b = append(b, `{"event":"sendMessage","data":`...)
	b = appendChat(b, conv, id)
	return append(b, '}')
}

func (caasdProtocol) frame(r *recorder, c *conn, b []byte, arrived, read int64) {
	r.frame(c, b, arrived, read)
}

// socketIOProtocol is Socket.IO 5 over Engine.IO 4, WebSocket only: the
// server opens with "0{…}", the client connects to the main namespace with
// its token ("40{…}", answered "40{…}" or "44{…}"), events are
// `42["name",data]`, and the server's ping "2" is answered "3". The server
// is bench/socketio/server.js.
type socketIOProtocol struct{}

func (socketIOProtocol) url(addr, _ string, _ bool) string {
	return "ws://" + addr + "/socket.io/?EIO=4&transport=websocket"
}

func (socketIOProtocol) join(ctx context.Context, c *conn, conv string, timeout time.Duration) error {
	if err := c.ws.WriteString(`40{"token":"` + c.token + `"}`); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if err := waitJoined(ctx, c, "connect", timeout); err != nil {
		return err
	}
	if err := c.ws.WriteString(`42["joinRoom",{"conversation_id":"` + conv + `"}]`); err != nil {
		return fmt.Errorf("joinRoom: %w", err)
	}
	return waitJoined(ctx, c, "joinRoom "+conv, timeout)
}

func (socketIOProtocol) appendSend(_ *conn, b []byte, conv string, id []byte) []byte {
	b = append(b, `42["sendMessage",`...)
	b = appendChat(b, conv, id)
	return append(b, ']')
}

func (socketIOProtocol) frame(r *recorder, c *conn, b []byte, arrived, read int64) {
	r.frames.Add(1)
	r.bytes.Add(int64(len(b)))
	switch {
	case bytes.HasPrefix(b, []byte(`42["`)):
		rest := b[len(`42["`):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			r.other.Add(1)
			return
		}
		r.event(c, rest[:j], rest[j:], arrived, read)
	case len(b) == 1 && b[0] == '2':
		_ = c.ws.WriteString("3")
	case bytes.HasPrefix(b, []byte("40")):
		signal(c.joined, nil)
	case bytes.HasPrefix(b, []byte("44")):
		err := errors.New("connect refused: " + text(b, keyMessage))
		signal(c.joined, err)
		r.errs.Add(1)
		r.note(err.Error())
	case bytes.HasPrefix(b, []byte("0{")):
	default:
		r.other.Add(1)
	}
}

// centrifugoProtocol is Centrifugo's JSON protocol (v2): commands and
// replies carry an id, several go in one frame separated by newlines, a
// publication reaches subscribers as a push, and the server's ping (an
// empty object) is answered with one.
type centrifugoProtocol struct{}

func (centrifugoProtocol) url(addr, _ string, _ bool) string {
	return "ws://" + addr + "/connection/websocket"
}

// Command ids of a conn's connect and subscribe; publishes count on from
// there.
const (
	cfConnectID   = 1
	cfSubscribeID = 2
)

func (centrifugoProtocol) join(ctx context.Context, c *conn, conv string, timeout time.Duration) error {
	c.cmdID = cfSubscribeID
	msg := `{"id":1,"connect":{"token":"` + c.token + `","name":"caasd-load"}}` + "\n" +
		`{"id":2,"subscribe":{"channel":"` + conv + `"}}`
	if err := c.ws.WriteString(msg); err != nil {
		return fmt.Errorf("connect and subscribe: %w", err)
	}
	return waitJoined(ctx, c, "subscribe "+conv, timeout)
}

func (centrifugoProtocol) appendSend(c *conn, b []byte, conv string, id []byte) []byte {
	c.cmdID++
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, uint64(c.cmdID), 10)
	b = append(b, `,"publish":{"channel":"`...)
	b = append(b, conv...)
	b = append(b, `","data":`...)
	b = appendChat(b, conv, id)
	return append(b, "}}"...)
}

// Keys of Centrifugo's replies and pushes.
const (
	cfPush  = `{"push":`
	cfData  = `"data":`
	cfError = `"error":`
	cfID    = `{"id":`
)

var (
	eventNew      = []byte("message:new")
	eventAccepted = []byte("message:accepted")
	eventFailed   = []byte("message:failed")
)

func (centrifugoProtocol) frame(r *recorder, c *conn, b []byte, arrived, read int64) {
	r.frames.Add(1)
	r.bytes.Add(int64(len(b)))
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		switch {
		case bytes.HasPrefix(line, []byte(cfPush)):
			if i := bytes.Index(line, []byte(cfData)); i >= 0 {
				r.event(c, eventNew, line[i+len(cfData):], arrived, read)
			} else {
				r.other.Add(1)
			}
		case bytes.Equal(line, []byte("{}")):
			_ = c.ws.WriteString("{}")
		case bytes.HasPrefix(line, []byte(cfID)):
			r.centrifugoReply(c, line[len(cfID):], arrived, read)
		default:
			r.other.Add(1)
		}
	}
}

// centrifugoReply records a reply; rest follows `{"id":`.
func (r *recorder) centrifugoReply(c *conn, rest []byte, arrived, read int64) {
	var n int64
	for _, ch := range rest {
		if ch < '0' || ch > '9' {
			break
		}
		n = n*10 + int64(ch-'0')
	}
	failed := bytes.Contains(rest, []byte(cfError))
	switch {
	case n == cfConnectID && failed, n == cfSubscribeID && failed:
		err := errors.New("centrifugo: " + text(rest, keyMessage))
		signal(c.joined, err)
		r.errs.Add(1)
		r.note(err.Error())
	case n == cfSubscribeID:
		signal(c.joined, nil)
	case n == cfConnectID:
	case failed:
		r.event(c, eventFailed, rest, arrived, read)
	default:
		r.event(c, eventAccepted, rest, arrived, read)
	}
}
