package transport

import (
	"encoding/binary"
	"fmt"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close codes of protocol faults, answered before the socket closes.
const (
	closeProtocolError uint16 = 1002
	closeInvalidData   uint16 = 1007
)

// frameError is a protocol fault of the client: the connection is closed
// with code and reason.
type frameError struct {
	code   uint16
	reason string
}

func (e *frameError) Error() string { return fmt.Sprintf("websocket %d: %s", e.code, e.reason) }

func protocolError(reason string) error { return &frameError{code: closeProtocolError, reason: reason} }

// wsFrame is one parsed client frame; payload is unmasked in place and
// aliases the read buffer.
type wsFrame struct {
	fin     bool
	opcode  byte
	payload []byte
}

// parseFrame parses the client frame at the start of b, unmasking its
// payload in place. It returns the frame and its length in b, errShortFrame
// if b holds only part of it, or a *frameError. maxPayload bounds a frame's
// payload; a longer one is refused before it is buffered.
func parseFrame(b []byte, maxPayload int) (wsFrame, int, error) {
	if len(b) < 2 {
		return wsFrame{}, 0, errShortFrame
	}
	b0, b1 := b[0], b[1]
	f := wsFrame{fin: b0&0x80 != 0, opcode: b0 & 0x0F}
	if b0&0x70 != 0 {
		return f, 0, protocolError("reserved bits set without an extension")
	}
	if b1&0x80 == 0 {
		return f, 0, protocolError("client frames must be masked")
	}
	control := f.opcode >= opClose
	switch f.opcode {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return f, 0, protocolError(fmt.Sprintf("unknown opcode %d", f.opcode))
	}
	n := uint64(b1 & 0x7F)
	hdr := 2
	switch n {
	case 126:
		if len(b) < 4 {
			return f, 0, errShortFrame
		}
		n = uint64(binary.BigEndian.Uint16(b[2:4]))
		hdr = 4
	case 127:
		if len(b) < 10 {
			return f, 0, errShortFrame
		}
		n = binary.BigEndian.Uint64(b[2:10])
		hdr = 10
		if n>>63 != 0 {
			return f, 0, protocolError("payload length has its top bit set")
		}
	}
	if control && (n > 125 || !f.fin) {
		return f, 0, protocolError("control frames must be whole and at most 125 bytes")
	}
	if n > uint64(maxPayload) {
		return f, 0, &frameError{code: CloseTooBig, reason: fmt.Sprintf("frame of %d bytes exceeds the limit of %d", n, maxPayload)}
	}
	total := hdr + 4 + int(n)
	if len(b) < total {
		return f, 0, errShortFrame
	}
	var key [4]byte
	copy(key[:], b[hdr:hdr+4])
	f.payload = b[hdr+4 : total]
	unmask(f.payload, key)
	return f, total, nil
}

// unmask XORs p with the masking key, eight bytes at a time.
func unmask(p []byte, key [4]byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k64)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}

// maxServerHeaderBytes is the longest header appendFrameHeader writes.
const maxServerHeaderBytes = 10

// appendFrameHeader appends an unmasked server frame header for a final
// frame of opcode with n bytes of payload.
func appendFrameHeader(b []byte, opcode byte, n int) []byte {
	b = append(b, 0x80|opcode)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// appendCloseFrame appends a close frame with code and reason, the reason
// cut to fit a control frame.
func appendCloseFrame(b []byte, code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	b = appendFrameHeader(b, opClose, 2+len(reason))
	b = binary.BigEndian.AppendUint16(b, code)
	return append(b, reason...)
}

// closeCodeOf reads the code of a client's close payload; an empty payload
// means 1005 (no code), answered with 1000.
func closeCodeOf(p []byte) (uint16, error) {
	switch {
	case len(p) == 0:
		return CloseNormal, nil
	case len(p) == 1:
		return 0, protocolError("close payload of one byte")
	}
	code := binary.BigEndian.Uint16(p)
	switch {
	case code < 1000, code == 1004, code == 1005, code == 1006, code >= 1016 && code < 3000, code >= 5000:
		return 0, protocolError(fmt.Sprintf("invalid close code %d", code))
	}
	return code, nil
}
