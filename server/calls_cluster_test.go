package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caasd/caasd/cluster"
	"github.com/caasd/caasd/internal/testenv"
)

// clusterMembers returns the cluster's members and the member id of each
// process of c.
func clusterMembers(t *testing.T, c *testCluster) (*cluster.View, []string) {
	t.Helper()
	status, b := testenv.HTTP(t, "GET", "http://"+c.procs[0].Addr+"/v1/admin/cluster", testenv.Token(t, "ops", "acme", "admin"), nil)
	var v struct {
		Members []cluster.Member `json:"members"`
	}
	if status != 200 || json.Unmarshal(b, &v) != nil || len(v.Members) != len(c.procs) {
		t.Fatalf("cluster view %d %s", status, b)
	}
	ids := make([]string, len(c.procs))
	for i, p := range c.procs {
		pv, ok := viewCluster(t, p.Addr)
		if !ok {
			t.Fatalf("no cluster view from %s", p.Addr)
		}
		ids[i] = pv.Node
	}
	return &cluster.View{Members: v.Members}, ids
}

// callOwnedBy returns a call id of tenant acme that node owns.
func callOwnedBy(t *testing.T, v *cluster.View, node, prefix string) string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if m, ok := v.Owner("call:acme/" + id); ok && m.ID == node {
			return id
		}
	}
	t.Fatalf("no call id owned by %s", node)
	return ""
}

// waitCallCounts waits until the nodes hold want active calls, by member id.
func waitCallCounts(t *testing.T, addr string, want map[string]int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got map[string]int64
	for time.Now().Before(deadline) {
		status, b := testenv.HTTP(t, "GET", "http://"+addr+"/v1/admin/cluster", testenv.Token(t, "ops", "acme", "admin"), nil)
		var v struct {
			Members []struct {
				ID    string `json:"id"`
				Calls int64  `json:"calls"`
			} `json:"members"`
		}
		if status == 200 && json.Unmarshal(b, &v) == nil {
			got = map[string]int64{}
			ok := true
			for _, m := range v.Members {
				got[m.ID] = m.Calls
				ok = ok && m.Calls == want[m.ID]
			}
			if ok {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("calls per node %v, want %v", got, want)
}

func TestCallAcrossThreeNodesIsOneActivation(t *testing.T) {
	env := testenv.Start(t)
	c := startCluster(t, env, 3, nil)
	clusterConversation(t, c.procs[0].Addr, "conv-cc", "alice", "bob", "carol")
	view, nodes := clusterMembers(t, c)
	dial := func(i int, user string) *testenv.Client {
		return testenv.Dial(t, c.procs[i].Addr, testenv.Token(t, user, "acme"), "")
	}
	alice, bob, carol := dial(0, "alice"), dial(1, "bob"), dial(2, "carol")
	users := []string{"alice", "bob", "carol"}
	all := []*testenv.Client{alice, bob, carol}

	// The call runs on bob's node: alice starts it from another node.
	id := callOwnedBy(t, view, nodes[1], "cc")
	startCall(t, "conv-cc", id, users, alice, bob, carol)
	waitCallCounts(t, c.procs[2].Addr, map[string]int64{nodes[1]: 1})

	// Signals reach their recipient only, across nodes.
	name := map[*testenv.Client]string{alice: "alice", bob: "bob", carol: "carol"}
	sigs := []struct {
		from, to *testenv.Client
		typ      string
		payload  string
	}{
		{alice, bob, "offer", `{"type":"offer","sdp":"v=0 offer alice to bob"}`},
		{bob, alice, "answer", `{"type":"answer","sdp":"v=0 answer bob to alice"}`},
		{carol, alice, "candidate", `{"candidate":"candidate:1 1 udp 2122260223 10.0.0.3 54400 typ host","sdpMid":"0"}`},
		{alice, carol, "offer", `{"type":"offer","sdp":"v=0 offer alice to carol"}`},
	}
	for _, sg := range sigs {
		sg.from.Emit("call:signal", map[string]any{"call_id": id, "to": name[sg.to], "type": sg.typ, "payload": json.RawMessage(sg.payload)})
		e := sg.to.Wait("call:signal", 10*time.Second, func(e testenv.Event) bool { return e.Field("from") == name[sg.from] && e.Field("type") == sg.typ })
		if e.Field("call_id") != id || !sameJSON(t, e.Field("payload"), sg.payload) {
			t.Fatalf("signal %s from %s arrived as %s", sg.typ, name[sg.from], e.Data)
		}
	}
	time.Sleep(300 * time.Millisecond) // a misdirected copy would be here by now
	for cl, want := range map[*testenv.Client]int{alice: 2, bob: 1, carol: 1} {
		if n := cl.Count("call:signal"); n != want {
			t.Fatalf("%s got %d signals, want %d", name[cl], n, want)
		}
	}

	// Refusals from the owner reach a connection of another node.
	mallory := dial(2, "mallory")
	mallory.Emit("call:join", map[string]any{"call_id": id})
	if e := mallory.Wait("call:error", 10*time.Second, nil); e.Field("code") != "not_member" {
		t.Fatalf("join by a non-member: %s", e.Data)
	}
	carol.Emit("call:join", map[string]any{"call_id": "cc-none"})
	if e := carol.Wait("call:error", 10*time.Second, field("call_id", "cc-none")); e.Field("code") != "not_found" {
		t.Fatalf("join of an unknown call: %s", e.Data)
	}

	// Recording starts once all three consented (asking is consenting).
	rec := requestRecording(t, id, alice, all...)
	consent(bob, id, rec, true)
	consent(carol, id, rec, true)
	for _, cl := range all {
		e := cl.Wait("call:recording:started", 10*time.Second, field("recording_id", rec))
		var ps []string
		if err := json.Unmarshal([]byte(e.Field("participants")), &ps); err != nil || strings.Join(ps, ",") != "alice,bob,carol" {
			t.Fatalf("%s: recording:started %s", name[cl], e.Data)
		}
	}

	// A leave reaches everyone (the leaver too); bob comes back.
	bob.Emit("call:leave", map[string]any{"call_id": id})
	for _, cl := range all {
		if e := cl.Wait("call:participant_left", 10*time.Second, field("user_id", "bob")); e.Field("reason") != "left" {
			t.Fatalf("%s: participant_left %s", name[cl], e.Data)
		}
	}
	bob.Emit("call:join", map[string]any{"call_id": id})
	for _, cl := range all {
		cl.Wait("call:participant_joined", 10*time.Second, field("user_id", "bob"))
	}

	// The end reaches everyone, and the call is gone from every node.
	alice.Emit("call:end", map[string]any{"call_id": id})
	for _, cl := range all {
		if e := cl.Wait("call:ended", 10*time.Second, field("call_id", id)); e.Field("reason") != "ended" || e.Field("ended_by") != "alice" {
			t.Fatalf("%s: call:ended %s", name[cl], e.Data)
		}
		if e := cl.Wait("call:recording:stopped", 10*time.Second, field("recording_id", rec)); e.Field("reason") != "call_ended" {
			t.Fatalf("%s: recording:stopped %s", name[cl], e.Data)
		}
	}
	waitCallCounts(t, c.procs[0].Addr, map[string]int64{})
	carol.Emit("call:join", map[string]any{"call_id": id})
	if e := carol.Wait("call:error", 10*time.Second, field("call_id", id)); e.Field("code") != "not_found" {
		t.Fatalf("join after end: %s", e.Data)
	}

	// A connection that closes leaves a call running on another node.
	id2 := callOwnedBy(t, view, nodes[0], "cd")
	startCall(t, "conv-cc", id2, []string{"bob", "alice", "carol"}, bob, alice, carol)
	waitCallCounts(t, c.procs[1].Addr, map[string]int64{nodes[0]: 1})
	carol.Close()
	for _, cl := range []*testenv.Client{alice, bob} {
		e := cl.Wait("call:participant_left", 10*time.Second, func(e testenv.Event) bool {
			return e.Field("call_id") == id2 && e.Field("user_id") == "carol"
		})
		if e.Field("reason") != "disconnected" {
			t.Fatalf("%s: participant_left on disconnect %s", name[cl], e.Data)
		}
	}
	bob.Emit("call:leave", map[string]any{"call_id": id2})
	alice.Wait("call:participant_left", 10*time.Second, func(e testenv.Event) bool {
		return e.Field("call_id") == id2 && e.Field("user_id") == "bob"
	})
	alice.Emit("call:leave", map[string]any{"call_id": id2})
	alice.Wait("call:participant_left", 10*time.Second, func(e testenv.Event) bool {
		return e.Field("call_id") == id2 && e.Field("user_id") == "alice"
	})
	waitCallCounts(t, c.procs[1].Addr, map[string]int64{})
}
