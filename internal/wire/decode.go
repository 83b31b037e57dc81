package wire

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DecodeSendMessage decodes sendMessage data into m exactly as
// json.Unmarshal does (the same result and, on failure, the same error), but
// the usual shape, an object of plain strings and a content object, is read
// by a scan without reflection.
func DecodeSendMessage(data []byte, m *SendMessage) error {
	var v SendMessage
	ok := scanObject(data, func(key, val []byte) bool {
		switch string(key) {
		case "message_id":
			return setString(&v.MessageID, val)
		case "conversation_id":
			return setString(&v.ConversationID, val)
		case "content":
			v.Content = append(json.RawMessage(nil), val...)
			return true
		}
		return !foldsTo(string(key), "message_id", "conversation_id", "content")
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
	ok := scanObject(frame, func(key, val []byte) bool {
		switch string(key) {
		case "event":
			return setString(&v.Event, val)
		case "data":
			v.Data = append(json.RawMessage(nil), val...)
			return true
		}
		return !foldsTo(string(key), "event", "data")
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
	ok := scanObject(data, func(key, val []byte) bool {
		switch string(key) {
		case "type":
			return setString(&v.Type, val)
		case "text":
			return setString(&v.Text, val)
		}
		return !foldsTo(string(key), "type", "text")
	})
	if ok {
		*c = v
		return nil
	}
	return json.Unmarshal(data, c)
}

// DecodeMessageNew decodes message:new data (a chat.messages record) into
// m as json.Unmarshal does, reading the shape caasd writes by a scan
// without reflection; m.Content is a copy the caller owns.
func DecodeMessageNew(data []byte, m *MessageNew) error {
	var v MessageNew
	ok := scanObject(data, func(key, val []byte) bool {
		switch string(key) {
		case "message_id":
			return setString(&v.MessageID, val)
		case "conversation_id":
			return setString(&v.ConversationID, val)
		case "tenant_id":
			return setString(&v.TenantID, val)
		case "sender_id":
			return setString(&v.SenderID, val)
		case "content":
			v.Content = append(json.RawMessage(nil), val...)
			return true
		case "seq":
			return setInt64(&v.Seq, val)
		case "created_at":
			return setString(&v.CreatedAt, val)
		}
		return !foldsTo(string(key), "message_id", "conversation_id", "tenant_id", "sender_id", "content", "seq", "created_at")
	})
	if ok {
		*m = v
		return nil
	}
	return json.Unmarshal(data, m)
}

// setInt64 stores a JSON integer (digits, an optional minus) that fits an
// int64 into n; null leaves n as it is, as json.Unmarshal does. Anything
// else (fractions, exponents, overflow) is for json.Unmarshal to refuse.
func setInt64(n *int64, val []byte) bool {
	if string(val) == "null" {
		return true
	}
	if len(val) == 0 || val[0] != '-' && (val[0] < '0' || val[0] > '9') {
		return false
	}
	for _, c := range val[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	v, err := strconv.ParseInt(string(val), 10, 64)
	if err != nil {
		return false
	}
	*n = v
	return true
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
