package socketio

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Engine.IO v4 packet types, as the first byte of a text packet.
const (
	eioOpen    byte = '0'
	eioClose   byte = '1'
	eioPing    byte = '2'
	eioPong    byte = '3'
	eioMessage byte = '4'
	eioUpgrade byte = '5'
	eioNoop    byte = '6'
)

// payloadSep separates the packets of one HTTP long-polling payload.
const payloadSep byte = 0x1e

// maxPayloadPackets bounds the packets of one decoded payload.
const maxPayloadPackets = 4096

// eioPacket is one decoded Engine.IO packet.
type eioPacket struct {
	// Type is one of eioOpen … eioNoop.
	Type byte
	// Data follows the type byte; for a binary message it is the decoded
	// bytes. It aliases the decoded input.
	Data []byte
	// Binary marks a binary message ("b" + base64 in a polling payload,
	// a binary frame on WebSocket).
	Binary bool
}

// decodeEIOPacket parses one text packet. base64 allows the "b<base64>"
// form of binary messages, which only polling payloads use.
func decodeEIOPacket(b []byte, base64OK bool) (eioPacket, error) {
	if len(b) == 0 {
		return eioPacket{}, fmt.Errorf("%w: empty engine.io packet", ErrMalformedPacket)
	}
	switch c := b[0]; {
	case c >= eioOpen && c <= eioNoop:
		return eioPacket{Type: c, Data: b[1:]}, nil
	case c == 'b' && base64OK:
		raw, err := base64.StdEncoding.DecodeString(string(b[1:]))
		if err != nil {
			return eioPacket{}, fmt.Errorf("%w: binary packet: %w", ErrMalformedPacket, err)
		}
		return eioPacket{Type: eioMessage, Data: raw, Binary: true}, nil
	default:
		return eioPacket{}, fmt.Errorf("%w: unknown engine.io packet type %q", ErrMalformedPacket, c)
	}
}

// decodePayload parses an HTTP long-polling payload: text packets
// separated by 0x1e. The packets alias body.
func decodePayload(body []byte) ([]eioPacket, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformedPacket)
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: payload is not valid UTF-8", ErrMalformedPacket)
	}
	n := bytes.Count(body, []byte{payloadSep}) + 1
	if n > maxPayloadPackets {
		return nil, fmt.Errorf("%w: %d packets in one payload, at most %d", ErrMalformedPacket, n, maxPayloadPackets)
	}
	out := make([]eioPacket, 0, n)
	for len(body) > 0 || len(out) < n {
		seg := body
		if i := bytes.IndexByte(body, payloadSep); i >= 0 {
			seg, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		p, err := decodeEIOPacket(seg, true)
		if err != nil {
			return nil, fmt.Errorf("packet %d: %w", len(out)+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// appendPayload appends packets joined by 0x1e to dst.
func appendPayload(dst []byte, packets ...[]byte) []byte {
	for i, p := range packets {
		if i > 0 {
			dst = append(dst, payloadSep)
		}
		dst = append(dst, p...)
	}
	return dst
}

// handshake is the data of the open packet.
type handshake struct {
	SID          string
	Upgrades     bool
	PingInterval int64
	PingTimeout  int64
	MaxPayload   int
}

// encodeOpen returns the open packet 0{"sid",…}.
func encodeOpen(h handshake) []byte {
	b := make([]byte, 0, 128)
	b = append(b, eioOpen)
	b = append(b, `{"sid":`...)
	b = appendJSONString(b, h.SID)
	if h.Upgrades {
		b = append(b, `,"upgrades":["websocket"]`...)
	} else {
		b = append(b, `,"upgrades":[]`...)
	}
	b = append(b, `,"pingInterval":`...)
	b = strconv.AppendInt(b, h.PingInterval, 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, h.PingTimeout, 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, int64(h.MaxPayload), 10)
	return append(b, '}')
}

// Engine.IO error codes of HTTP error bodies {"code","message"}.
const (
	eioErrTransportUnknown = 0
	eioErrUnknownSID       = 1
	eioErrBadHandshake     = 2
	eioErrBadRequest       = 3
	eioErrForbidden        = 4
	eioErrVersion          = 5
)

// encodeHTTPError returns the JSON body of an Engine.IO HTTP error.
func encodeHTTPError(code int, msg string) []byte {
	b := make([]byte, 0, len(msg)+32)
	b = append(b, `{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
