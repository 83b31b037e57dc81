package transport

import (
	"sync"
)

// Frame is one server event: its name and its JSON data. A frame is built
// once per event and shared by every recipient. Its native encoding is made
// with it, and Data is a slice of that encoding, so a frame kept in a
// room's recent buffer holds its bytes once; other codecs encode it once,
// on first use, and reuse that encoding for every other connection.
type Frame struct {
	Name string
	Data []byte

	native []byte
	once   [numCodecs]sync.Once
	enc    [numCodecs][]byte
}

// Codec slots of a frame's encoding cache (the native encoding is made
// with the frame).
const (
	CodecSocketIO = iota
	numCodecs
)

// NewFrame returns a frame for event name with encoded JSON data; data is
// copied.
func NewFrame(name string, data []byte) *Frame {
	native := encodeNative(name, data)
	f := &Frame{Name: name, native: native}
	if len(data) > 0 {
		f.Data = native[len(native)-1-len(data) : len(native)-1 : len(native)-1]
	}
	return f
}

// Encoded returns the frame encoded by codec, building it with build once.
func (f *Frame) Encoded(codec int, build func(name string, data []byte) []byte) []byte {
	f.once[codec].Do(func() { f.enc[codec] = build(f.Name, f.Data) })
	return f.enc[codec]
}

// Native returns the frame in the native protocol: {"event":…,"data":…}.
func (f *Frame) Native() []byte { return f.native }

// NativeFrame returns the frame for event name whose native encoding is
// native (what Native returned), sharing its bytes. A buffer that holds
// frames for long keeps their native encoding alone, one object without
// pointers instead of three, and makes a frame again when it is read;
// Data is "null" for a frame made without data.
func NativeFrame(name string, native []byte) *Frame {
	from := len(`{"event":`) + quotedLen(name) + len(`,"data":`)
	return &Frame{Name: name, native: native, Data: native[from : len(native)-1 : len(native)-1]}
}

// quotedLen is the length of appendJSONString(nil, s).
func quotedLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}

func encodeNative(name string, data []byte) []byte {
	b := make([]byte, 0, len(name)+len(data)+22)
	b = append(b, `{"event":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"data":`...)
	if len(data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, data...)
	}
	return append(b, '}')
}

// appendJSONString appends s quoted; event names are plain ASCII, but a
// name is escaped properly anyway.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
