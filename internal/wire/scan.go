package wire

import "bytes"

// maxScanDepth bounds the nesting the scanner follows; anything deeper is
// left to encoding/json, which allows more.
const maxScanDepth = 64

// scanObject calls field for each member of the JSON object data, in order,
// with its key (only keys without escapes) and its value's bytes, checking
// the syntax as it goes: one pass over the bytes where json.Valid and a
// scan were two. It returns false when data is not valid JSON as
// encoding/json reads it, not an object, nested deeper than maxScanDepth,
// has a key with escapes, or field returns false: the caller then decodes
// the slow way. field may have been called for the members before the
// point where it gave up.
func scanObject(data []byte, field func(key, val []byte) bool) bool {
	p := skipSpace(data, 0)
	if p == len(data) || data[p] != '{' {
		return false
	}
	p = skipSpace(data, p+1)
	if p < len(data) && data[p] == '}' {
		return skipSpace(data, p+1) == len(data)
	}
	for {
		if p == len(data) || data[p] != '"' {
			return false
		}
		end := stringEnd(data, p)
		if end < 0 {
			return false
		}
		key := data[p+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		p = skipSpace(data, end)
		if p == len(data) || data[p] != ':' {
			return false
		}
		p = skipSpace(data, p+1)
		if end = valueEnd(data, p, 1); end < 0 || !field(key, data[p:end]) {
			return false
		}
		p = skipSpace(data, end)
		if p == len(data) {
			return false
		}
		switch data[p] {
		case '}':
			return skipSpace(data, p+1) == len(data)
		case ',':
			p = skipSpace(data, p+1)
		default:
			return false
		}
	}
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

// valueEnd returns the end of the JSON value that starts at data[p], or -1
// when there is none encoding/json would accept there (or it nests deeper
// than maxScanDepth); depth is the nesting of the value's container.
func valueEnd(data []byte, p, depth int) int {
	if p >= len(data) {
		return -1
	}
	switch c := data[p]; {
	case c == '"':
		return stringEnd(data, p)
	case c == '{' || c == '[':
		if depth >= maxScanDepth {
			return -1
		}
		return containerEnd(data, p, depth+1)
	case c == '-' || c >= '0' && c <= '9':
		return numberEnd(data, p)
	case c == 't':
		return literalEnd(data, p, "true")
	case c == 'f':
		return literalEnd(data, p, "false")
	case c == 'n':
		return literalEnd(data, p, "null")
	}
	return -1
}

// stringEnd returns the end of the string whose quote is at data[p], or
// -1: unterminated, a control character, or a bad escape. Bytes that are
// not UTF-8 are allowed, as encoding/json allows them.
func stringEnd(data []byte, p int) int {
	for q := p + 1; q < len(data); q++ {
		switch c := data[q]; {
		case c == '"':
			return q + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if q++; q == len(data) {
				return -1
			}
			switch data[q] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if q+4 >= len(data) {
					return -1
				}
				for _, h := range data[q+1 : q+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1
					}
				}
				q += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// containerEnd returns the end of the object or array that opens at
// data[p], or -1.
func containerEnd(data []byte, p, depth int) int {
	obj, closer := data[p] == '{', byte(']')
	if obj {
		closer = '}'
	}
	q := skipSpace(data, p+1)
	if q < len(data) && data[q] == closer {
		return q + 1
	}
	for {
		if obj {
			if q == len(data) || data[q] != '"' {
				return -1
			}
			if q = stringEnd(data, q); q < 0 {
				return -1
			}
			if q = skipSpace(data, q); q == len(data) || data[q] != ':' {
				return -1
			}
			q = skipSpace(data, q+1)
		}
		if q = valueEnd(data, q, depth); q < 0 {
			return -1
		}
		if q = skipSpace(data, q); q == len(data) {
			return -1
		}
		switch data[q] {
		case closer:
			return q + 1
		case ',':
			q = skipSpace(data, q+1)
		default:
			return -1
		}
	}
}

// numberEnd returns the end of the number that starts at data[p], or -1:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(data []byte, p int) int {
	q := p
	if data[q] == '-' {
		q++
	}
	switch {
	case q == len(data):
		return -1
	case data[q] == '0':
		q++
	case data[q] >= '1' && data[q] <= '9':
		q = digitsEnd(data, q)
	default:
		return -1
	}
	if q < len(data) && data[q] == '.' {
		r := digitsEnd(data, q+1)
		if r == q+1 {
			return -1
		}
		q = r
	}
	if q < len(data) && (data[q] == 'e' || data[q] == 'E') {
		q++
		if q < len(data) && (data[q] == '+' || data[q] == '-') {
			q++
		}
		r := digitsEnd(data, q)
		if r == q {
			return -1
		}
		q = r
	}
	return q
}

func digitsEnd(data []byte, p int) int {
	for p < len(data) && data[p] >= '0' && data[p] <= '9' {
		p++
	}
	return p
}

// literalEnd returns the end of lit at data[p], or -1 if it is not there.
func literalEnd(data []byte, p int, lit string) int {
	if !bytes.HasPrefix(data[p:], []byte(lit)) {
		return -1
	}
	return p + len(lit)
}
