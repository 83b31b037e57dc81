package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// clientFrame builds a masked client frame.
func clientFrame(tb testing.TB, b0 byte, payload []byte) []byte {
	tb.Helper()
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, 0x80|127), uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

func TestParseFrame(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	mid := bytes.Repeat([]byte("y"), 300)
	cases := []struct {
		name    string
		frame   []byte
		max     int
		wantOp  byte
		wantFin bool
		want    []byte
		code    uint16 // 0: no error
	}{
		{"text", clientFrame(t, 0x81, []byte("hello")), 1 << 20, opText, true, []byte("hello"), 0},
		{"16-bit length", clientFrame(t, 0x81, mid), 1 << 20, opText, true, mid, 0},
		{"64-bit length", clientFrame(t, 0x82, big), 1 << 20, opBinary, true, big, 0},
		{"first fragment", clientFrame(t, 0x01, []byte("ab")), 1 << 20, opText, false, []byte("ab"), 0},
		{"ping", clientFrame(t, 0x89, []byte("p")), 1 << 20, opPing, true, []byte("p"), 0},
		{"empty close", clientFrame(t, 0x88, nil), 1 << 20, opClose, true, []byte{}, 0},
		{"too big", clientFrame(t, 0x81, big), 1024, 0, false, nil, CloseTooBig},
		{"unmasked", []byte{0x81, 0x01, 'a'}, 1 << 20, 0, false, nil, closeProtocolError},
		{"reserved bit", clientFrame(t, 0xC1, []byte("a")), 1 << 20, 0, false, nil, closeProtocolError},
		{"unknown opcode", clientFrame(t, 0x83, []byte("a")), 1 << 20, 0, false, nil, closeProtocolError},
		{"fragmented ping", clientFrame(t, 0x09, []byte("a")), 1 << 20, 0, false, nil, closeProtocolError},
		{"long ping", clientFrame(t, 0x89, mid), 1 << 20, 0, false, nil, closeProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, n, err := parseFrame(append([]byte(nil), tc.frame...), tc.max)
			if tc.code != 0 {
				var fe *frameError
				if !errors.As(err, &fe) || fe.code != tc.code {
					t.Fatalf("err = %v, want code %d", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if n != len(tc.frame) || f.opcode != tc.wantOp || f.fin != tc.wantFin || !bytes.Equal(f.payload, tc.want) {
				t.Fatalf("got op %d fin %v n %d payload %q…", f.opcode, f.fin, n, f.payload[:min(len(f.payload), 10)])
			}
			// Every cut of a valid frame is short, never wrong.
			for cut := range len(tc.frame) {
				if _, _, err := parseFrame(append([]byte(nil), tc.frame[:cut]...), tc.max); !errors.Is(err, errShortFrame) {
					t.Fatalf("cut at %d: err = %v, want short", cut, err)
				}
			}
		})
	}
}

func TestAppendFrameHeaderLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		h := appendFrameHeader(nil, opText, n)
		// Parse it back as a client would, after masking it.
		h[1] |= 0x80
		frame := append(append(h, 0, 0, 0, 0), make([]byte, n)...)
		f, got, err := parseFrame(frame, 1<<20)
		if err != nil || got != len(frame) || len(f.payload) != n || !f.fin || f.opcode != opText {
			t.Fatalf("n=%d: parsed %d of %d, payload %d, err %v", n, got, len(frame), len(f.payload), err)
		}
	}
}

func TestCloseCodeOf(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		code uint16
		bad  bool
	}{
		{nil, CloseNormal, false},
		{[]byte{0x03}, 0, true},
		{[]byte{0x03, 0xE8}, 1000, false},
		{[]byte{0x03, 0xED}, 0, true}, // 1005 may not be sent
		{[]byte{0x0B, 0xB8, 'x'}, 3000, false},
		{[]byte{0x13, 0x88}, 0, true}, // 5000
	} {
		code, err := closeCodeOf(tc.p)
		if (err != nil) != tc.bad || code != tc.code {
			t.Fatalf("%v: code %d err %v", tc.p, code, err)
		}
	}
}

// FuzzParseFrame checks that no input panics or claims more than it has.
func FuzzParseFrame(f *testing.F) {
	f.Add(clientFrame(f, 0x81, []byte("hello")))
	f.Add(clientFrame(f, 0x88, []byte{0x03, 0xE8}))
	f.Add([]byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := parseFrame(b, 1<<16)
		if err != nil {
			return
		}
		if n > len(b) || len(fr.payload) > n {
			t.Fatalf("claimed %d of %d", n, len(b))
		}
	})
}
