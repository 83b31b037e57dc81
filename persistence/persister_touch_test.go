package persistence

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestTouchGroups(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Second)
	many := map[string]time.Time{}
	var manyIDs []string
	for i := range maxTouchGroupIDs + 3 {
		id := fmt.Sprintf("c%05d", i)
		many[id] = t1
		manyIDs = append(manyIDs, id)
	}
	cases := []struct {
		name   string
		latest map[string]time.Time
		want   []touchGroup
	}{
		{"one conversation", map[string]time.Time{"a": t0}, []touchGroup{{t0, []string{"a"}}}},
		{"same time shares a statement", map[string]time.Time{"b": t0, "a": t0}, []touchGroup{{t0, []string{"a", "b"}}}},
		{"times apart, oldest first", map[string]time.Time{"a": t1, "b": t0, "c": t1}, []touchGroup{{t0, []string{"b"}}, {t1, []string{"a", "c"}}}},
		{"a large group is split", many, []touchGroup{{t1, manyIDs[:maxTouchGroupIDs]}, {t1, manyIDs[maxTouchGroupIDs:]}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := touchGroups(tc.latest)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d groups, want %d", len(got), len(tc.want))
			}
			covered := 0
			for i := range got {
				if !got[i].at.Equal(tc.want[i].at) || !slices.Equal(got[i].ids, tc.want[i].ids) {
					t.Fatalf("group %d = %v %v, want %v %v", i, got[i].at, got[i].ids, tc.want[i].at, tc.want[i].ids)
				}
				for _, id := range got[i].ids {
					if !tc.latest[id].Equal(got[i].at) {
						t.Fatalf("%s grouped at %v, its time is %v", id, got[i].at, tc.latest[id])
					}
				}
				covered += len(got[i].ids)
			}
			if covered != len(tc.latest) {
				t.Fatalf("groups cover %d conversations, want %d", covered, len(tc.latest))
			}
		})
	}
}
