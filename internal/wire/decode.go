package wire

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// DecodeSendMessage decodes sendMessage data into m exactly as
// json.Unmarshal does (the same result and, on failure, the same error), but
// the usual shape, an object of plain strings and a content object, is read
// by a scan without reflection.
func DecodeSendMessage(data []byte, m *SendMessage) error {
	var v SendMessage
	ok := scanObject(data, func(key string, val []byte) bool {
		switch key {
		case "message_id":
			return setString(&v.MessageID, val)
		case "conversation_id":
			return setString(&v.ConversationID, val)
		case "content":
			v.Content = append(json.RawMessage(nil), val...)
			return true
		}
		return !foldsTo(key, "message_id", "conversation_id", "content")
	})
	if ok {
		*m = v
		return nil
	}
	return json.Unmarshal(data, m)
}

// DecodeInbound decodes a native client frame into in as json.Unmarshal
// does, reading the usual shape by a scan without reflection; in.Data is a
// copy the caller owns.
func DecodeInbound(frame []byte, in *Inbound) error {
	var v Inbound
	ok := scanObject(frame, func(key string, val []byte) bool {
		switch key {
		case "event":
			return setString(&v.Event, val)
		case "data":
			v.Data = append(json.RawMessage(nil), val...)
			return true
		}
		return !foldsTo(key, "event", "data")
	})
	if ok {
		*in = v
		return nil
	}
	return json.Unmarshal(frame, in)
}

// DecodeContent decodes a message's content object into c as json.Unmarshal
// does, reading the usual shape by a scan without reflection.
func DecodeContent(data []byte, c *Content) error {
	var v Content
	ok := scanObject(data, func(key string, val []byte) bool {
		switch key {
		case "type":
			return setString(&v.Type, val)
		case "text":
			return setString(&v.Text, val)
		}
		return !foldsTo(key, "type", "text")
	})
	if ok {
		*c = v
		return nil
	}
	return json.Unmarshal(data, c)
}

// scanObject calls field for each member of the JSON object data, in order,
// with its key (only keys without escapes) and its value's bytes. It
// returns false when data is not valid JSON, not an object, has a key with
// escapes, or field returns false: the caller then decodes the slow way.
func scanObject(data []byte, field func(key string, val []byte) bool) bool {
	if !json.Valid(data) {
		return false
	}
	// data is valid JSON from here on.
	p := skipSpace(data, 0)
	if data[p] != '{' {
		return false
	}
	p++
	for {
		p = skipSpace(data, p)
		switch data[p] {
		case '}':
			return true
		case ',':
			p = skipSpace(data, p+1)
		}
		end := skipValue(data, p)
		raw := data[p+1 : end-1]
		if strings.IndexByte(string(raw), '\\') >= 0 {
			return false
		}
		key := string(raw)
		p = skipSpace(data, end)
		p = skipSpace(data, p+1) // ':'
		end = skipValue(data, p)
		if !field(key, data[p:end]) {
			return false
		}
		p = end
	}
}

// setString stores a JSON string without escapes in valid UTF-8 into s;
// null leaves s as it is, as json.Unmarshal does. Anything else is for
// json.Unmarshal to decode or refuse.
func setString(s *string, val []byte) bool {
	if string(val) == "null" {
		return true
	}
	if len(val) < 2 || val[0] != '"' {
		return false
	}
	body := val[1 : len(val)-1]
	if strings.IndexByte(string(body), '\\') >= 0 || !utf8.Valid(body) {
		return false
	}
	*s = string(body)
	return true
}

// foldsTo reports whether key matches one of names only without regard to
// case, which json.Unmarshal accepts as that field.
func foldsTo(key string, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}

func skipSpace(data []byte, p int) int {
	for p < len(data) {
		switch data[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

// skipValue returns the end of the valid JSON value that starts at p.
func skipValue(data []byte, p int) int {
	switch data[p] {
	case '"':
		for q := p + 1; ; q++ {
			switch data[q] {
			case '\\':
				q++
			case '"':
				return q + 1
			}
		}
	case '{', '[':
		depth := 0
		for q := p; ; q++ {
			switch data[q] {
			case '"':
				q = skipValue(data, q) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return q + 1
				}
			}
		}
	default: // number, true, false, null
		q := p
		for q < len(data) {
			switch data[q] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return q
			}
			q++
		}
		return q
	}
}
