package wire

import (
	"encoding/json"
	"strconv"
)

// appender is a payload that encodes itself exactly as encoding/json
// would, without reflection: the payloads of every chat message.
type appender interface {
	AppendJSON(dst []byte) []byte
	// jsonSize is about the length of the encoding, so that it is made in
	// one allocation.
	jsonSize() int
}

func (m MessageAccepted) jsonSize() int {
	return len(m.MessageID) + len(m.ConversationID) + 72
}

func (m MessagePersisted) jsonSize() int {
	return len(m.MessageID) + len(m.ConversationID) + len(m.PersistedAt) + 96
}

func (m MessageNew) jsonSize() int {
	return len(m.MessageID) + len(m.ConversationID) + len(m.TenantID) + len(m.SenderID) + len(m.Content) + len(m.CreatedAt) + 144
}

// AppendJSON implements appender.
func (m MessageAccepted) AppendJSON(dst []byte) []byte {
	dst = appendField(dst, '{', "message_id", m.MessageID)
	dst = appendField(dst, ',', "conversation_id", m.ConversationID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, m.Seq, 10)
	return append(dst, '}')
}

// AppendJSON implements appender.
func (m MessagePersisted) AppendJSON(dst []byte) []byte {
	dst = appendField(dst, '{', "message_id", m.MessageID)
	dst = appendField(dst, ',', "conversation_id", m.ConversationID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, m.Seq, 10)
	dst = appendField(dst, ',', "persisted_at", m.PersistedAt)
	return append(dst, '}')
}

// AppendJSON implements appender. Content must be valid JSON, as the
// decoders of client input and of Kafka records leave it.
func (m MessageNew) AppendJSON(dst []byte) []byte {
	dst = appendField(dst, '{', "message_id", m.MessageID)
	dst = appendField(dst, ',', "conversation_id", m.ConversationID)
	dst = appendField(dst, ',', "tenant_id", m.TenantID)
	dst = appendField(dst, ',', "sender_id", m.SenderID)
	dst = append(dst, `,"content":`...)
	dst = appendRaw(dst, m.Content)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, m.Seq, 10)
	dst = appendField(dst, ',', "created_at", m.CreatedAt)
	return append(dst, '}')
}

// appendField appends sep, the quoted key, a colon and the string s.
func appendField(dst []byte, sep byte, key, s string) []byte {
	dst = append(dst, sep, '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendString(dst, s)
}

// appendString appends s as encoding/json quotes it. Identifiers and
// timestamps are plain printable ASCII, which is copied; anything else
// (escapes, HTML characters, non-ASCII) is left to encoding/json.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendRaw appends raw JSON as encoding/json writes a json.RawMessage:
// compact, with HTML characters and U+2028/U+2029 escaped. Raw JSON that
// has none of those characters nor whitespace is already that form.
func appendRaw(dst []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2: // 0xE2 leads U+2028/U+2029
			b, err := json.Marshal(raw)
			if err != nil {
				return append(dst, "null"...)
			}
			return append(dst, b...)
		}
	}
	return append(dst, raw...)
}
