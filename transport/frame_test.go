package transport

import (
	"bytes"
	"testing"
)

// TestNativeFrameGivesTheFrameBack: a frame made again from its native
// encoding has the same name, data and encoding, whatever the name needs
// escaped.
func TestNativeFrameGivesTheFrameBack(t *testing.T) {
	for _, tc := range []struct{ name, data string }{
		{"message:new", `{"seq":7,"text":"hi"}`},
		{"a\"b\\c", `[1,2]`},
		{"ctl\x01\x1f", `"s"`},
		{"", `null`},
		{"x", `0`},
	} {
		f := NewFrame(tc.name, []byte(tc.data))
		g := NativeFrame(tc.name, f.Native())
		if g.Name != tc.name || string(g.Data) != tc.data || !bytes.Equal(g.Native(), f.Native()) {
			t.Errorf("NativeFrame(%q) = name %q, data %q, native %q; want %q, %q, %q", tc.name, g.Name, g.Data, g.Native(), tc.name, tc.data, f.Native())
		}
		if &g.Native()[0] != &f.Native()[0] {
			t.Errorf("NativeFrame(%q) copied the encoding", tc.name)
		}
	}
}
