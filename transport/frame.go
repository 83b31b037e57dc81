package transport

import (
	"sync"
)

// Frame is one server event: its name and its JSON data. A frame is built
// once per event and shared by every recipient; each codec encodes it once,
// on first use, and reuses that encoding for every other connection.
type Frame struct {
	Name string
	Data []byte

	once [numCodecs]sync.Once
	enc  [numCodecs][]byte
}

// Codec slots of a frame's encoding cache.
const (
	CodecNative = iota
	CodecSocketIO
	numCodecs
)

// NewFrame returns a frame for event name with encoded JSON data.
func NewFrame(name string, data []byte) *Frame {
	return &Frame{Name: name, Data: data}
}

// Encoded returns the frame encoded by codec, building it with build once.
func (f *Frame) Encoded(codec int, build func(name string, data []byte) []byte) []byte {
	f.once[codec].Do(func() { f.enc[codec] = build(f.Name, f.Data) })
	return f.enc[codec]
}

// Native returns the frame in the native protocol: {"event":…,"data":…}.
func (f *Frame) Native() []byte { return f.Encoded(CodecNative, encodeNative) }

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
