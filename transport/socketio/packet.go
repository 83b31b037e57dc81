package socketio

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/caasd/caasd/internal/wire"
)

// Socket.IO v5 packet types.
const (
	sioConnect      byte = 0
	sioDisconnect   byte = 1
	sioEvent        byte = 2
	sioAck          byte = 3
	sioConnectError byte = 4
	sioBinaryEvent  byte = 5
	sioBinaryAck    byte = 6
)

// Bounds of the decoder.
const (
	maxNamespaceLen = 256
	maxAckIDDigits  = 15 // below 2^53: JavaScript's safe integers
	maxAttachments  = 1000
	maxEventNameLen = 64
	defaultNS       = "/"
)

// sioPacket is one decoded Socket.IO packet.
type sioPacket struct {
	Type        byte
	Attachments int
	Namespace   string
	// ID is the acknowledgement id, or -1 when there is none.
	ID int64
	// Data is the JSON payload as sent (aliases the input); nil if none.
	Data []byte
	// Name and Arg are an EVENT's name and first argument (a copy; nil
	// when the event has no argument).
	Name string
	Arg  []byte
}

// decodeSIOPacket parses one Socket.IO packet (the data of an Engine.IO
// message): <type>[<attachments>-][<namespace>,][<ack id>][JSON].
func decodeSIOPacket(b []byte) (sioPacket, error) {
	p := sioPacket{Namespace: defaultNS, ID: -1}
	if len(b) == 0 {
		return p, fmt.Errorf("%w: empty socket.io packet", ErrMalformedPacket)
	}
	if b[0] < '0' || b[0] > '6' {
		return p, fmt.Errorf("%w: unknown socket.io packet type %q", ErrMalformedPacket, b[0])
	}
	p.Type = b[0] - '0'
	i := 1
	if p.Type == sioBinaryEvent || p.Type == sioBinaryAck {
		j := i
		for j < len(b) && j-i <= 4 && isDigit(b[j]) {
			j++
		}
		if j == i || j >= len(b) || b[j] != '-' {
			return p, fmt.Errorf("%w: binary packet without attachment count", ErrMalformedPacket)
		}
		n, _ := strconv.Atoi(string(b[i:j]))
		if n > maxAttachments {
			return p, fmt.Errorf("%w: %d attachments", ErrMalformedPacket, n)
		}
		p.Attachments, i = n, j+1
	}
	if i < len(b) && b[i] == '/' {
		j := i
		for j < len(b) && b[j] != ',' {
			if b[j] < 0x20 || b[j] == 0x7f {
				return p, fmt.Errorf("%w: control character in namespace", ErrMalformedPacket)
			}
			j++
		}
		if j-i > maxNamespaceLen {
			return p, fmt.Errorf("%w: namespace longer than %d bytes", ErrMalformedPacket, maxNamespaceLen)
		}
		p.Namespace = string(b[i:j])
		i = min(j+1, len(b))
	}
	if j := i; j < len(b) && isDigit(b[j]) {
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if j-i > maxAckIDDigits {
			return p, fmt.Errorf("%w: ack id longer than %d digits", ErrMalformedPacket, maxAckIDDigits)
		}
		p.ID, _ = strconv.ParseInt(string(b[i:j]), 10, 64)
		i = j
	}
	if i < len(b) {
		p.Data = b[i:]
		if !json.Valid(p.Data) {
			return p, fmt.Errorf("%w: payload is not valid JSON", ErrMalformedPacket)
		}
	}
	return p, checkPayload(&p)
}

// checkPayload checks the payload a packet type requires and decodes an
// event's name and argument.
func checkPayload(p *sioPacket) error {
	first := byte(0)
	if len(p.Data) > 0 {
		first = p.Data[0]
	}
	switch p.Type {
	case sioConnect:
		if first != 0 && first != '{' {
			return fmt.Errorf("%w: CONNECT payload must be an object", ErrMalformedPacket)
		}
	case sioDisconnect:
		if first != 0 {
			return fmt.Errorf("%w: DISCONNECT carries no payload", ErrMalformedPacket)
		}
	case sioConnectError:
		if first != '{' && first != '"' {
			return fmt.Errorf("%w: CONNECT_ERROR payload must be an object", ErrMalformedPacket)
		}
	case sioAck, sioBinaryAck:
		if first != '[' || p.ID < 0 {
			return fmt.Errorf("%w: ACK needs an id and an array payload", ErrMalformedPacket)
		}
	case sioEvent, sioBinaryEvent:
		if first != '[' {
			return fmt.Errorf("%w: EVENT payload must be an array", ErrMalformedPacket)
		}
		var args []json.RawMessage
		if err := json.Unmarshal(p.Data, &args); err != nil {
			return fmt.Errorf("%w: EVENT payload: %w", ErrMalformedPacket, err)
		}
		if len(args) == 0 {
			return fmt.Errorf("%w: EVENT payload is an empty array", ErrMalformedPacket)
		}
		if err := json.Unmarshal(args[0], &p.Name); err != nil || p.Name == "" {
			return fmt.Errorf("%w: EVENT name must be a non-empty string", ErrMalformedPacket)
		}
		if len(p.Name) > maxEventNameLen {
			return fmt.Errorf("%w: event name longer than %d bytes", ErrMalformedPacket, maxEventNameLen)
		}
		if len(args) > 1 {
			p.Arg = args[1]
		}
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// appendJSONOrNull appends data, or null when it is empty.
func appendJSONOrNull(b, data []byte) []byte {
	if len(data) == 0 {
		return append(b, "null"...)
	}
	return append(b, data...)
}

// encodeEvent returns the Engine.IO message of an EVENT: 42["name",data].
// It is the transport.CodecSocketIO encoding of a frame.
func encodeEvent(name string, data []byte) []byte {
	b := make([]byte, 0, len(name)+len(data)+10)
	b = append(b, eioMessage, '0'+sioEvent, '[')
	b = appendJSONString(b, name)
	b = append(b, ',')
	b = appendJSONOrNull(b, data)
	return append(b, ']')
}

// encodeAck returns the Engine.IO message of an ACK: 43<id>[data].
func encodeAck(id uint64, data []byte) []byte {
	b := make([]byte, 0, len(data)+24)
	b = append(b, eioMessage, '0'+sioAck)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, '[')
	b = appendJSONOrNull(b, data)
	return append(b, ']')
}

// encodeConnect returns the CONNECT reply 40{"sid":…}.
func encodeConnect(sid string) []byte {
	b := make([]byte, 0, len(sid)+12)
	b = append(b, eioMessage, '0'+sioConnect)
	b = append(b, `{"sid":`...)
	b = appendJSONString(b, sid)
	return append(b, '}')
}

// encodeConnectError returns a CONNECT_ERROR for namespace ns:
// 44[ns,]{"message":…,"data":{"code":…}}.
func encodeConnectError(ns string, code wire.Code, msg string) []byte {
	b := make([]byte, 0, len(ns)+len(msg)+48)
	b = append(b, eioMessage, '0'+sioConnectError)
	if ns != defaultNS {
		b = append(b, ns...)
		b = append(b, ',')
	}
	b = append(b, `{"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"data":{"code":`...)
	b = appendJSONString(b, string(code))
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	return append(b, "}}"...)
}

// disconnectPacket is the server's DISCONNECT of the default namespace.
const disconnectPacket = "41"
