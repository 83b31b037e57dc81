package persistence

import "testing"

func TestStatusRoundTrip(t *testing.T) {
	cases := []struct {
		in   string
		want Assignment
	}{
		{"n|7", Assignment{Seq: 7}},
		{"p|8||conv|with|bars", Assignment{Seq: 8, Dup: true, Status: StatusPending, Conversation: "conv|with|bars"}},
		{encodeStatus('d', 9, "c", "2026-01-01T00:00:00Z"), Assignment{Seq: 9, Dup: true, Status: StatusPersisted, Conversation: "c", PersistedAt: "2026-01-01T00:00:00Z"}},
		{encodeStatus('f', 10, "c", ""), Assignment{Seq: 10, Dup: true, Status: StatusFailed, Conversation: "c"}},
	}
	for _, tc := range cases {
		got, err := decodeStatus(tc.in)
		if err != nil || got != tc.want {
			t.Fatalf("decodeStatus(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "x|1", "n|abc", "p"} {
		if _, err := decodeStatus(bad); err == nil {
			t.Fatalf("decodeStatus(%q) accepted", bad)
		}
	}
}
