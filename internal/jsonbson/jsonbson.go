// Package jsonbson turns a JSON value into a BSON element in one pass, as
// decoding it into an any with encoding/json and encoding that with the
// BSON encoder would, without the maps and interfaces between: the
// persister stores every message's content this way.
package jsonbson

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// maxDepth bounds the nesting followed; deeper values take the slow way.
const maxDepth = 64

// maxKeys bounds the members of one object whose keys are checked for
// repeats by a linear search; bigger objects take the slow way.
const maxKeys = 32

// AppendElement appends to dst the BSON element key holding the JSON value
// data as encoding/json decodes it into an any and the BSON encoder
// encodes that: objects as embedded documents (in the JSON's order, where
// a map's would be random), arrays as arrays, numbers as doubles, strings,
// booleans and null. ok is false, and dst as it was, when data is not
// valid JSON or where the two could differ: a key repeated in one object
// (a map keeps the last), a key holding a NUL byte (BSON cannot), a number
// out of a double's range, more than maxKeys members or maxDepth levels.
// The caller then takes the slow way, which decides.
func AppendElement(dst []byte, key string, data []byte) (out []byte, ok bool) {
	e := encoder{data: data}
	e.space()
	out, ok = e.value(dst, key, 0)
	if !ok {
		return dst, false
	}
	if e.space(); e.p != len(data) {
		return dst, false
	}
	return out, true
}

// encoder reads data from p on.
type encoder struct {
	data []byte
	p    int
}

func (e *encoder) space() {
	for e.p < len(e.data) {
		switch e.data[e.p] {
		case ' ', '\t', '\n', '\r':
			e.p++
		default:
			return
		}
	}
}

// next reports whether the byte at p is c, and steps over it if so.
func (e *encoder) next(c byte) bool {
	if e.p < len(e.data) && e.data[e.p] == c {
		e.p++
		return true
	}
	return false
}

func (e *encoder) value(dst []byte, key string, depth int) ([]byte, bool) {
	if e.p == len(e.data) {
		return dst, false
	}
	switch c := e.data[e.p]; {
	case c == '{':
		return e.object(dst, key, depth+1)
	case c == '[':
		return e.array(dst, key, depth+1)
	case c == '"':
		s, ok := e.str()
		return bsoncore.AppendStringElement(dst, key, s), ok
	case c == 't':
		return bsoncore.AppendBooleanElement(dst, key, true), e.literal("true")
	case c == 'f':
		return bsoncore.AppendBooleanElement(dst, key, false), e.literal("false")
	case c == 'n':
		return bsoncore.AppendNullElement(dst, key), e.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		f, ok := e.number()
		return bsoncore.AppendDoubleElement(dst, key, f), ok
	}
	return dst, false
}

func (e *encoder) object(dst []byte, key string, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return dst, false
	}
	idx, dst := bsoncore.AppendDocumentElementStart(dst, key)
	e.p++
	e.space()
	var seen [maxKeys]string
	n := 0
	for closed := e.next('}'); !closed; {
		if e.p == len(e.data) || e.data[e.p] != '"' || n == maxKeys {
			return dst, false
		}
		k, ok := e.str()
		if !ok || strings.IndexByte(k, 0) >= 0 {
			return dst, false
		}
		for _, s := range seen[:n] {
			if s == k {
				return dst, false
			}
		}
		seen[n] = k
		n++
		if e.space(); !e.next(':') {
			return dst, false
		}
		e.space()
		if dst, ok = e.value(dst, k, depth); !ok {
			return dst, false
		}
		if closed, ok = e.closes('}'); !ok {
			return dst, false
		}
	}
	dst, err := bsoncore.AppendDocumentEnd(dst, idx)
	return dst, err == nil
}

func (e *encoder) array(dst []byte, key string, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return dst, false
	}
	idx, dst := bsoncore.AppendArrayElementStart(dst, key)
	e.p++
	e.space()
	for i, closed := 0, e.next(']'); !closed; i++ {
		var ok bool
		if dst, ok = e.value(dst, strconv.Itoa(i), depth); !ok {
			return dst, false
		}
		if closed, ok = e.closes(']'); !ok {
			return dst, false
		}
	}
	dst, err := bsoncore.AppendArrayEnd(dst, idx)
	return dst, err == nil
}

// closes reads what follows a member of a container: its closer (closed)
// or a comma and the space after it; ok is false for anything else.
func (e *encoder) closes(closer byte) (closed, ok bool) {
	e.space()
	if e.next(closer) {
		return true, true
	}
	if !e.next(',') {
		return false, false
	}
	e.space()
	return false, true
}

// str reads the string at p. One without escapes in valid UTF-8 is its
// bytes; anything else is unquoted by encoding/json, whose way with bad
// UTF-8 and lone surrogates (U+FFFD) is the one to match.
func (e *encoder) str() (string, bool) {
	start := e.p
	e.p++
	escaped, ascii := false, true
	for e.p < len(e.data) {
		switch c := e.data[e.p]; {
		case c == '"':
			e.p++
			body := e.data[start+1 : e.p-1]
			if !escaped && (ascii || utf8.Valid(body)) {
				return string(body), true
			}
			var s string
			err := json.Unmarshal(e.data[start:e.p], &s)
			return s, err == nil
		case c == '\\':
			escaped = true
			e.p += 2
		case c < 0x20:
			return "", false
		default:
			ascii = ascii && c < utf8.RuneSelf
			e.p++
		}
	}
	return "", false
}

func (e *encoder) literal(lit string) bool {
	if !strings.HasPrefix(string(e.data[e.p:]), lit) {
		return false
	}
	e.p += len(lit)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and parses
// it as encoding/json does into a float64.
func (e *encoder) number() (float64, bool) {
	start := e.p
	e.next('-')
	switch {
	case e.next('0'):
	case e.digits() == 0:
		return 0, false
	}
	if e.next('.') && e.digits() == 0 {
		return 0, false
	}
	if e.next('e') || e.next('E') {
		if !e.next('+') {
			e.next('-')
		}
		if e.digits() == 0 {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(e.data[start:e.p]), 64)
	return f, err == nil
}

// digits steps over a run of digits and returns its length.
func (e *encoder) digits() int {
	start := e.p
	for e.p < len(e.data) && e.data[e.p] >= '0' && e.data[e.p] <= '9' {
		e.p++
	}
	return e.p - start
}
