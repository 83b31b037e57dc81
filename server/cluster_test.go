package server_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
)

func clusterConversation(t *testing.T, addr, conv string, users ...string) {
	t.Helper()
	ps := make([]participant, len(users))
	for i, u := range users {
		ps[i] = participant{UserID: u, Role: "member"}
		if i == 0 {
			ps[i].Role = "owner"
		}
	}
	testenv.MustHTTP(t, 201, "POST", "http://"+addr+"/v1/admin/conversations", testenv.Token(t, "ops", "acme", "admin"),
		map[string]any{"conversation_id": conv, "participants": ps})
}

func TestClusterRoomAcrossThreeNodesKeepsOneOrder(t *testing.T) {
	env := testenv.Start(t)
	c := startCluster(t, env, 3, nil)
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	clusterConversation(t, c.procs[0].Addr, "c-x", users...)
	clients := make([]*testenv.Client, len(users))
	for i, u := range users {
		clients[i] = joinAt(t, c.procs[i%3].Addr, u, "c-x")
		clients[i].Wait("room:joined", 10*time.Second, nil)
	}
	const per = 50
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < per; j++ {
				clients[i].Emit("sendMessage", text(fmt.Sprintf("x-%d-%d", i, j), "c-x", fmt.Sprintf("%d/%d", i, j)))
			}
		}(i)
	}
	wg.Wait()
	var ref []string
	for i, cl := range clients {
		waitMessages(t, cl, 3*per)
		evs := cl.All("message:new")
		ids := make([]string, len(evs))
		for k, e := range evs {
			ids[k] = e.Field("message_id")
			if e.Field("seq") != strconv.Itoa(k+1) {
				t.Fatalf("%s: position %d has seq %s", users[i], k, e.Field("seq"))
			}
		}
		if ref == nil {
			ref = ids
		} else if strings.Join(ids, ",") != strings.Join(ref, ",") {
			t.Fatalf("%s sees another order than %s", users[i], users[0])
		}
	}
}

// flow keeps one client sending and records what each send became.
type flow struct {
	mu       sync.Mutex
	c        *testenv.Client
	prefix   string
	sent     int
	accepted map[string]int64
}

func (f *flow) run(t *testing.T, conv string, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		id := fmt.Sprintf("%s-%d", f.prefix, i)
		f.c.Emit("sendMessage", text(id, conv, id))
		if ev, ok := f.c.TryWait("message:accepted", 300*time.Millisecond, byID(id)); ok {
			seq, _ := strconv.ParseInt(ev.Field("seq"), 10, 64)
			f.mu.Lock()
			f.accepted[id] = seq
			f.mu.Unlock()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClusterKilledOwnerFailsOverWithoutLoss(t *testing.T) {
	env := testenv.Start(t)
	c := startCluster(t, env, 3, nil)
	users := []string{"o0", "a1", "b2", "c0", "d1", "e2", "bad"}
	clusterConversation(t, c.procs[0].Addr, "c-kill", users...)
	owner := roomNode(t, c.procs[0].Addr, "c-kill")
	victim := -1
	for i := range c.procs {
		if c.vars[i]["NODE_ID"] != "" && strings.HasPrefix(owner, c.vars[i]["NODE_ID"]+"-") {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("owner %s is none of the nodes", owner)
	}
	clients := make([]*testenv.Client, 6)
	for i := range clients {
		clients[i] = joinAt(t, c.procs[i%3].Addr, users[i], "c-kill")
		clients[i].Wait("room:joined", 10*time.Second, nil)
	}
	clients[0].Emit("room:ban", mod("c-kill", "bad", 0))
	clients[0].Wait("room:moderated", 5*time.Second, nil)

	// Senders on the two surviving nodes keep sending through the kill.
	stop := make(chan struct{})
	var flows []*flow
	var wg sync.WaitGroup
	for i, cl := range clients[:3] {
		if i%3 == victim {
			continue
		}
		f := &flow{c: cl, prefix: "k" + strconv.Itoa(i), accepted: map[string]int64{}}
		flows = append(flows, f)
		wg.Add(1)
		go func() { defer wg.Done(); f.run(t, "c-kill", stop) }()
	}
	time.Sleep(time.Second)
	killed := time.Now()
	c.procs[victim].Kill()

	// Within 3 s a survivor's message is accepted again.
	var back time.Duration
	for time.Since(killed) < 10*time.Second && back == 0 {
		probe := fmt.Sprintf("probe-%d", time.Now().UnixNano())
		survivor := clients[(victim+1)%3]
		survivor.Emit("sendMessage", text(probe, "c-kill", "probe"))
		if _, ok := survivor.TryWait("message:accepted", 200*time.Millisecond, byID(probe)); ok {
			back = time.Since(killed)
		}
	}
	t.Logf("room accepting again %v after the kill", back)
	if back == 0 || back > 3*time.Second {
		t.Fatalf("room not back within 3 s (back after %v)", back)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	newOwner := roomNode(t, c.procs[(victim+1)%3].Addr, "c-kill")
	if strings.HasPrefix(newOwner, c.vars[victim]["NODE_ID"]+"-") {
		t.Fatalf("room still on the killed node %s", newOwner)
	}
	// The ban survived; the members on the surviving nodes kept receiving.
	bad := joinAt(t, c.procs[(victim+1)%3].Addr, "bad", "c-kill")
	if cd := code(bad, "room:error"); cd != "banned" {
		t.Fatalf("ban after failover: %s", cd)
	}
	last := flows[0]
	var lastID string
	last.mu.Lock()
	var maxSeq int64
	for id, s := range last.accepted {
		if s > maxSeq {
			maxSeq, lastID = s, id
		}
	}
	last.mu.Unlock()
	for i, cl := range clients {
		if i%3 == victim {
			continue
		}
		cl.Wait("message:new", 10*time.Second, byID(lastID))
	}
	// No seq used twice; every accepted message persisted exactly once.
	seen := map[int64]string{}
	for _, f := range flows {
		f.mu.Lock()
		for id, s := range f.accepted {
			if other, dup := seen[s]; dup {
				t.Fatalf("seq %d used by %s and %s", s, other, id)
			}
			seen[s] = id
		}
		f.mu.Unlock()
	}
	var ids []string
	for _, id := range seen {
		ids = append(ids, id)
	}
	waitStoredOnce(t, env, "c-kill", ids, 40*time.Second)
	t.Logf("%d accepted messages across the failover, all persisted once", len(seen))
}

// recordEpochs reads the room's records from Kafka: seq and epoch header.
func recordEpochs(t *testing.T, env *testenv.Env, key string) (seqs, epochs []int64, ids []string) {
	t.Helper()
	for _, m := range topicRecords(t, env, "chat.messages") {
		if string(m.Key) != key {
			continue
		}
		var epoch int64
		for _, h := range m.Headers {
			if string(h.Key) == "epoch" {
				epoch, _ = strconv.ParseInt(string(h.Value), 10, 64)
			}
		}
		msg := kafkaDecode(t, m.Value)
		seqs, epochs, ids = append(seqs, msg.Seq), append(epochs, epoch), append(ids, msg.MessageID)
	}
	return seqs, epochs, ids
}

func TestClusterPausedNodeSendsNothingForRoomsItLost(t *testing.T) {
	env := testenv.Start(t)
	c := startCluster(t, env, 3, nil)
	users := []string{"p0", "p1", "p2"}
	clusterConversation(t, c.procs[0].Addr, "c-pause", users...)
	owner := roomNode(t, c.procs[0].Addr, "c-pause")
	victim := -1
	for i := range c.procs {
		if strings.HasPrefix(owner, c.vars[i]["NODE_ID"]+"-") {
			victim = i
		}
	}
	clients := make([]*testenv.Client, 3)
	for i := range clients {
		clients[i] = joinAt(t, c.procs[i].Addr, users[i], "c-pause")
		clients[i].Wait("room:joined", 10*time.Second, nil)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		f := &flow{c: clients[i], prefix: "s" + strconv.Itoa(i), accepted: map[string]int64{}}
		wg.Add(1)
		go func() { defer wg.Done(); f.run(t, "c-pause", stop) }()
	}
	time.Sleep(time.Second)
	c.procs[victim].Signal(syscall.SIGSTOP)
	time.Sleep(5 * time.Second)
	c.procs[victim].Signal(syscall.SIGCONT)
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	time.Sleep(time.Second)

	// The paused node learned it had been declared dead and came back as a
	// new member.
	other := c.procs[(victim+1)%3].Addr
	waitMembers(t, other, 3)
	v, _ := viewCluster(t, other)
	rejoined := false
	for _, m := range v.Members {
		if strings.HasPrefix(m.ID, c.vars[victim]["NODE_ID"]+"-") && strings.HasSuffix(m.ID, "-r1") {
			rejoined = true
		}
	}
	if !rejoined {
		t.Fatalf("the paused node did not rejoin as a new member: %+v\n%s", v.Members, c.procs[victim].Logs())
	}

	// No client saw a seq twice or a message twice.
	for i, cl := range clients {
		bySeq, byIDs := map[string]string{}, map[string]bool{}
		for _, e := range cl.All("message:new") {
			id, seq := e.Field("message_id"), e.Field("seq")
			if byIDs[id] {
				t.Fatalf("client %d got %s twice", i, id)
			}
			if other, ok := bySeq[seq]; ok && other != id {
				t.Fatalf("client %d got seq %s for %s and %s", i, seq, other, id)
			}
			byIDs[id], bySeq[seq] = true, id
		}
	}
	// Kafka: no record of an old epoch after the first record of a newer one
	// (by seq), and no seq for two messages.
	seqs, epochs, ids := recordEpochs(t, env, "acme/c-pause")
	firstOfEpoch := map[int64]int64{}
	bySeq := map[int64]string{}
	for k, s := range seqs {
		if f, ok := firstOfEpoch[epochs[k]]; !ok || s < f {
			firstOfEpoch[epochs[k]] = s
		}
		if other, ok := bySeq[s]; ok && other != ids[k] {
			t.Fatalf("seq %d published for %s and %s", s, other, ids[k])
		}
		bySeq[s] = ids[k]
	}
	if len(firstOfEpoch) < 2 {
		t.Fatalf("the room never moved: epochs %v", firstOfEpoch)
	}
	for k, s := range seqs {
		for e, first := range firstOfEpoch {
			if e > epochs[k] && s > first {
				t.Fatalf("record seq %d with stale epoch %d after epoch %d began at seq %d", s, epochs[k], e, first)
			}
		}
	}
	t.Logf("%d records in %d epochs", len(seqs), len(firstOfEpoch))
}

func TestClusterRollingRestartLosesNothing(t *testing.T) {
	env := testenv.Start(t)
	c := startCluster(t, env, 3, map[string]string{"SHUTDOWN_TIMEOUT_MS": "10000"})
	users := []string{"r0", "r1", "r2"}
	clusterConversation(t, c.procs[0].Addr, "c-roll", users...)
	var mu sync.Mutex
	accepted := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func(i int, u string) {
			defer wg.Done()
			node := i
			var cl *testenv.Client
			connect := func() {
				for {
					addr := c.procs[node%3].Addr
					node++
					conn, _, err := testenv.TryDial(t, addr, testenv.Token(t, u, "acme"), "")
					if err != nil {
						time.Sleep(100 * time.Millisecond)
						continue
					}
					conn.Emit("joinRoom", map[string]any{"conversation_id": "c-roll"})
					if _, ok := conn.TryWait("room:joined", 3*time.Second, nil); ok {
						cl = conn
						return
					}
				}
			}
			connect()
			for j := 0; ; j++ {
				id := fmt.Sprintf("%s-%d", u, j)
				for attempt := 0; ; attempt++ {
					select {
					case <-stop:
						return
					default:
					}
					cl.Emit("sendMessage", text(id, "c-roll", id))
					if _, ok := cl.TryWait("message:accepted", time.Second, byID(id)); ok {
						mu.Lock()
						accepted[id] = true
						mu.Unlock()
						break
					}
					if closed, _ := cl.Closed(); closed {
						connect()
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		}(i, u)
	}
	for i := range c.procs {
		time.Sleep(time.Second)
		c.procs[i].Signal(syscall.SIGTERM)
		if !c.procs[i].Wait(20 * time.Second) {
			t.Fatalf("node %d did not drain within 20 s", i)
		}
		c.restart(i)
		waitMembers(t, c.procs[i].Addr, 3)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	var ids []string
	for id := range accepted {
		ids = append(ids, id)
	}
	waitStoredOnce(t, env, "c-roll", ids, 60*time.Second)
	t.Logf("%d messages accepted through a rolling restart, all persisted once", len(accepted))
}

func TestClusterWrongSecretDoesNotJoin(t *testing.T) {
	env := testenv.Start(t)
	c := startCluster(t, env, 2, nil)
	v := map[string]string{}
	for k, x := range c.vars[0] {
		v[k] = x
	}
	v["NODE_ID"], v["CLUSTER_SECRET"] = "intruder", "another-secret"
	v["HTTP_ADDR"] = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	v["CLUSTER_BIND"] = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	v["CLUSTER_REMOTE_BIND"] = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	intruder := testenv.StartProc(t, env.ProcEnv(v))
	time.Sleep(3 * time.Second)
	if got, _ := viewCluster(t, intruder.Addr); len(got.Members) != 1 {
		t.Fatalf("the node with another secret sees %d members", len(got.Members))
	}
	for _, p := range c.procs {
		if got, _ := viewCluster(t, p.Addr); len(got.Members) != 2 {
			t.Fatalf("a member sees %d members after the intruder tried", len(got.Members))
		}
	}
}
