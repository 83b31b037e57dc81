package jsonbson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

var seeds = []string{
	`{"type":"text","text":"hello"}`,
	` { "type" : "image" , "url" : "https://x/y.png" , "size" : [640, 480.5, -1e3, 0, -0] , "meta" : { "alt" : "a\"b\u00e9\n" , "ok" : true , "no" : false , "none" : null } } `,
	`"just text"`, `42`, `-0.5e-3`, `true`, `null`, `[]`, `{}`, `[[[]],{}]`,
	`{"a":1,"a":2}`, `{"a\u0000":1}`, `{"k":"\ud800"}`, "{\"k\":\"\xff\"}", `1e400`, `01`, `1.`, `.5`, `-`, `+1`,
	`{"a":1,}`, `[1,]`, `{"a" 1}`, `"\x"`, `"unterminated`, `tru`, `nul`, `{"a":1}x`, ``, ` `,
	`{"é":"ü","emoji":"😀","esc":"\/\b\f\r\t"}`,
}

// doc wraps the element AppendElement gives for data in a document.
func doc(tb testing.TB, data []byte) (bson.Raw, bool) {
	tb.Helper()
	idx, d := bsoncore.AppendDocumentStart(nil)
	d, ok := AppendElement(d, "v", data)
	if !ok {
		if len(d) != 4 {
			tb.Fatalf("AppendElement(%q) failed but left %d bytes, want dst as it was", data, len(d)-4)
		}
		return nil, false
	}
	d, err := bsoncore.AppendDocumentEnd(d, idx)
	if err != nil {
		tb.Fatal(err)
	}
	return d, true
}

// member is one element of a document in canon's form.
type member struct {
	key string
	val any
}

// canon is v in a form that compares equal for documents whose members
// differ only in order: a document is its members sorted by key (repeats
// kept), an array its values, anything else its type and exact bytes.
func canon(tb testing.TB, v bson.RawValue) any {
	tb.Helper()
	switch v.Type {
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		elems, err := bson.Raw(v.Value).Elements()
		if err != nil {
			tb.Fatalf("elements of %v: %v", v, err)
		}
		out := make([]member, len(elems))
		for i, e := range elems {
			out[i] = member{key: e.Key(), val: canon(tb, e.Value())}
		}
		if v.Type == bson.TypeEmbeddedDocument {
			slices.SortStableFunc(out, func(a, b member) int { return strings.Compare(a.key, b.key) })
		}
		return out
	default:
		return fmt.Sprintf("%v:%x", v.Type, v.Value)
	}
}

// FuzzAppendElement holds AppendElement to the slow way: whenever it takes
// a value, encoding/json into an any and the BSON encoder take it too and
// give the same value, to the bit (members of a document in any order).
func FuzzAppendElement(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := doc(t, data)
		if !ok {
			return
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("AppendElement(%q) took a value encoding/json refuses: %v", data, err)
		}
		want, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
		if err != nil {
			t.Fatalf("AppendElement(%q) took a value the BSON encoder refuses: %v", data, err)
		}
		if g, w := canon(t, got.Lookup("v")), canon(t, bson.Raw(want).Lookup("v")); !reflect.DeepEqual(g, w) {
			t.Fatalf("AppendElement(%q) = %v, the slow way %v", data, g, w)
		}
	})
}

// TestAppendElementTakesTheUsualContent checks that the content shapes of
// chat messages go the fast way, and keep their members' order.
func TestAppendElementTakesTheUsualContent(t *testing.T) {
	for _, s := range seeds[:10] {
		if _, ok := doc(t, []byte(s)); !ok {
			t.Errorf("AppendElement(%s) went the slow way", s)
		}
	}
	raw, _ := doc(t, []byte(`{"z":1,"a":2,"m":3}`))
	elems, err := raw.Lookup("v").Document().Elements()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range elems {
		keys = append(keys, e.Key())
	}
	if !reflect.DeepEqual(keys, []string{"z", "a", "m"}) {
		t.Errorf("members %v, want the JSON's order z a m", keys)
	}
}

// TestAppendElementLeavesTheRestToTheSlowWay lists what it must not take.
func TestAppendElementLeavesTheRestToTheSlowWay(t *testing.T) {
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"a\u0000":1}`, `1e400`, `01`, `{"a":1}x`, ``, `[1,]`,
		`[` + string(bytes.Repeat([]byte("["), maxDepth)) + string(bytes.Repeat([]byte("]"), maxDepth+1)),
		`{` + manyKeys(maxKeys+1) + `}`,
	} {
		if _, ok := doc(t, []byte(s)); ok {
			t.Errorf("AppendElement(%.40q) took it", s)
		}
	}
}

func manyKeys(n int) string {
	var b bytes.Buffer
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k`)
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(string(rune('a' + i/26)))
		b.WriteString(`":1`)
	}
	return b.String()
}
