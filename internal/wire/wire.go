// Package wire defines caasd's client protocol: event names, payloads and
// the stable error codes, shared by every codec (native JSON, Socket.IO).
package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Client → server events.
const (
	EvJoinRoom    = "joinRoom"
	EvLeaveRoom   = "leaveRoom"
	EvSendMessage = "sendMessage"
)

// Server → client events.
const (
	EvRoomJoined       = "room:joined"
	EvRoomLeft         = "room:left"
	EvRoomError        = "room:error"
	EvMessageAccepted  = "message:accepted"
	EvMessagePersisted = "message:persisted"
	EvMessageFailed    = "message:failed"
	EvMessageNew       = "message:new"
	EvError            = "error"
)

// Code is a stable error code carried by every wire error.
type Code string

// The stable codes. Clients switch on these; their meaning never changes.
const (
	CodeUnauthorized   Code = "unauthorized"
	CodeForbidden      Code = "forbidden"
	CodeNotMember      Code = "not_member"
	CodeInvalidMessage Code = "invalid_message"
	CodeRateLimited    Code = "rate_limited"
	CodeTooLarge       Code = "too_large"
	CodeUnavailable    Code = "unavailable"
	CodeInternal       Code = "internal"
	CodeBanned         Code = "banned"
	CodeMuted          Code = "muted"
	CodeNotFound       Code = "not_found"
)

// Error is a wire error: a stable code and a human message.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf is a shorthand for a wire error.
func Errorf(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Inbound is a client frame of the native protocol.
type Inbound struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// JoinRoom is the data of joinRoom.
type JoinRoom struct {
	ConversationID string `json:"conversation_id"`
	SinceSeq       *int64 `json:"since_seq,omitempty"`
}

// LeaveRoom is the data of leaveRoom.
type LeaveRoom struct {
	ConversationID string `json:"conversation_id"`
}

// SendMessage is the data of sendMessage.
type SendMessage struct {
	MessageID      string          `json:"message_id"`
	ConversationID string          `json:"conversation_id"`
	Content        json.RawMessage `json:"content"`
}

// Content is the part of a message's content caasd inspects; the rest of
// the object travels unchanged.
type Content struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Member is one member in room:joined.
type Member struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
	Online bool   `json:"online"`
}

// RoomJoined is the data of room:joined.
type RoomJoined struct {
	ConversationID string   `json:"conversation_id"`
	Role           string   `json:"role"`
	Members        []Member `json:"members"`
	LastSeq        int64    `json:"last_seq"`
	LastReadSeq    int64    `json:"last_read_seq"`
	Unread         int64    `json:"unread"`
	// Recovered is set when the join asked for since_seq: true when every
	// missed message follows, false when the gap was too large.
	Recovered *bool `json:"recovered,omitempty"`
}

// RoomLeft is the data of room:left.
type RoomLeft struct {
	ConversationID string `json:"conversation_id"`
}

// RoomError is the data of room:error.
type RoomError struct {
	ConversationID string `json:"conversation_id"`
	Code           Code   `json:"code"`
	Message        string `json:"message"`
}

// MessageAccepted is the data of message:accepted.
type MessageAccepted struct {
	MessageID      string `json:"message_id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
}

// MessagePersisted is the data of message:persisted.
type MessagePersisted struct {
	MessageID      string `json:"message_id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	PersistedAt    string `json:"persisted_at"`
}

// MessageFailed is the data of message:failed.
type MessageFailed struct {
	MessageID      string `json:"message_id"`
	ConversationID string `json:"conversation_id,omitempty"`
	Code           Code   `json:"code"`
	Message        string `json:"message"`
}

// MessageNew is the data of message:new; it is also the Kafka record and
// the MongoDB document of a message.
type MessageNew struct {
	MessageID      string          `json:"message_id"`
	ConversationID string          `json:"conversation_id"`
	TenantID       string          `json:"tenant_id"`
	SenderID       string          `json:"sender_id"`
	Content        json.RawMessage `json:"content"`
	Seq            int64           `json:"seq"`
	CreatedAt      string          `json:"created_at"`
}

// seqZero is how a MessageNew encoded with Seq 0 holds its seq. Only
// created_at, a timestamp, follows it, so its last occurrence is the field.
var seqZero = []byte(`,"seq":0,"created_at":`)

// WithSeq returns body, a MessageNew encoded with Seq 0, as it encodes with
// seq: the same bytes as Marshal, without encoding the message again.
func WithSeq(body []byte, seq int64) []byte {
	i := bytes.LastIndex(body, seqZero)
	if i < 0 {
		var m MessageNew
		_ = json.Unmarshal(body, &m)
		m.Seq = seq
		return Marshal(m)
	}
	rest := body[i+len(`,"seq":0`):]
	out := make([]byte, 0, len(body)+20)
	out = append(out, body[:i]...)
	out = append(out, `,"seq":`...)
	out = strconv.AppendInt(out, seq, 10)
	return append(out, rest...)
}

// Marshal encodes v; the payload types above cannot fail to encode.
func Marshal(v any) []byte {
	if a, ok := v.(appender); ok {
		return a.AppendJSON(make([]byte, 0, a.jsonSize()))
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(Error{Code: CodeInternal, Message: "encode: " + err.Error()})
	}
	return b
}

// Limits of identifiers.
const (
	MaxIDLen = 128
)

// ValidID reports whether s is a usable identifier: 1–128 bytes of printable
// UTF-8 without control characters.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' {
			return false
		}
	}
	return true
}
