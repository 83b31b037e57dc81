package cluster

import (
	"fmt"
	"testing"
)

func members(ids ...string) []Member {
	out := make([]Member, len(ids))
	for i, id := range ids {
		out[i] = Member{ID: id, RemoteAddr: "addr-" + id}
	}
	return out
}

func TestOwnerIsStableAndSpreads(t *testing.T) {
	v := newView(members("a", "b", "c"), 1)
	count := map[string]int{}
	for i := 0; i < 3000; i++ {
		o, ok := v.Owner(fmt.Sprintf("t/room-%d", i))
		if !ok {
			t.Fatal("no owner")
		}
		count[o.ID]++
		again, _ := newView(members("c", "a", "b"), 2).Owner(fmt.Sprintf("t/room-%d", i))
		if again.ID != o.ID {
			t.Fatal("the owner depends on member order")
		}
	}
	for id, n := range count {
		if n < 800 || n > 1200 {
			t.Fatalf("node %s owns %d of 3000 keys: %v", id, n, count)
		}
	}
}

func TestOnlyTheLeavingNodesKeysMove(t *testing.T) {
	three := newView(members("a", "b", "c"), 1)
	two := newView(members("a", "c"), 2)
	for i := 0; i < 2000; i++ {
		k := fmt.Sprintf("t/room-%d", i)
		before, _ := three.Owner(k)
		after, _ := two.Owner(k)
		if before.ID != "b" && after.ID != before.ID {
			t.Fatalf("%s moved from %s to %s although %s stayed", k, before.ID, after.ID, before.ID)
		}
		if except, _ := three.OwnerExcept(k, "b"); except.ID != after.ID {
			t.Fatalf("OwnerExcept(b) = %s, owner without b = %s", except.ID, after.ID)
		}
	}
	if _, ok := newView(nil, 3).Owner("x"); ok {
		t.Fatal("an empty view has an owner")
	}
}
