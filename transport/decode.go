package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/caasd/caasd/internal/wire"
)

// DecodeNative parses a native client frame {"event":…,"data":…}. The
// returned data is a copy the caller owns.
//
// A frame is checked to be valid JSON in one pass, then its two members
// are found by scanning, without reflection; a frame whose keys or event
// name use escapes takes the general decoder, which means the same.
func DecodeNative(frame []byte) (name string, data []byte, err error) {
	if !json.Valid(frame) {
		return decodeNativeSlow(frame)
	}
	name, data, ok := scanNative(frame)
	if !ok {
		return decodeNativeSlow(frame)
	}
	return checkNative(name, data)
}

func checkNative(name string, data []byte) (string, []byte, error) {
	if name == "" {
		return "", nil, errors.New("malformed frame: \"event\" is required")
	}
	if len(name) > 64 {
		return "", nil, errors.New("malformed frame: event name too long")
	}
	return name, data, nil
}

func decodeNativeSlow(frame []byte) (string, []byte, error) {
	var in wire.Inbound
	if err := json.Unmarshal(frame, &in); err != nil {
		return "", nil, fmt.Errorf("malformed frame: %w", err)
	}
	return checkNative(in.Event, in.Data)
}

// scanNative finds the event name and data of a valid JSON object. Keys
// match case-insensitively and the last of a repeated key wins, as
// encoding/json does; ok is false when the frame needs the general decoder.
func scanNative(b []byte) (name string, data []byte, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", nil, false // not an object: the general decoder words the error
	}
	i++
	var rawName, rawData []byte
	for {
		i = skipSpace(b, i)
		if b[i] == '}' {
			break
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		kEnd, esc := stringEnd(b, i)
		if esc {
			return "", nil, false
		}
		key := b[i+1 : kEnd-1]
		i = skipSpace(b, kEnd)
		i = skipSpace(b, i+1) // ':'
		vEnd := valueEnd(b, i)
		switch {
		case bytes.EqualFold(key, []byte("event")):
			switch b[i] {
			case '"':
				if _, esc := stringEnd(b, i); esc || !utf8.Valid(b[i+1:vEnd-1]) {
					return "", nil, false // the general decoder unescapes and replaces
				}
				rawName = b[i+1 : vEnd-1]
			case 'n':
				rawName = nil
			default:
				return "", nil, false // not a string: the general decoder words the error
			}
		case bytes.EqualFold(key, []byte("data")):
			rawData = b[i:vEnd]
		}
		i = vEnd
	}
	if rawData != nil {
		data = append([]byte(nil), rawData...)
	}
	return string(rawName), data, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string starting at b[i] (a quote)
// and whether it holds an escape.
func stringEnd(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
	return len(b), esc
}

// valueEnd returns the index after the JSON value starting at b[i]; b is
// valid JSON.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := stringEnd(b, j)
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		return j
	}
}
