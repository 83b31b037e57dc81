package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
)

// testCluster is n caasd processes gossiping on loopback, sharing one
// redis-server, one kfake broker and one FerretDB.
type testCluster struct {
	t     *testing.T
	env   *testenv.Env
	procs []*testenv.Proc
	vars  []map[string]string
}

func startCluster(t *testing.T, env *testenv.Env, n int, extra map[string]string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, env: env}
	var seeds []string
	for i := 0; i < n; i++ {
		seeds = append(seeds, fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
	}
	for i := 0; i < n; i++ {
		v := map[string]string{
			"NODE_ID":               fmt.Sprintf("node%d", i),
			"HTTP_ADDR":             fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
			"CLUSTER_BIND":          seeds[i],
			"CLUSTER_REMOTE_BIND":   fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
			"CLUSTER_SEEDS":         strings.Join(seeds, ","),
			"CLUSTER_SECRET":        "cluster-test-secret",
			"CLUSTER_NAME":          "test",
			"LOG_LEVEL":             "warn",
			"RATE_LIMIT_PER_MINUTE": "10000", "RATE_LIMIT_PER_HOUR": "100000", "SPAM_REPEAT_COUNT": "1000",
		}
		for k, x := range extra {
			v[k] = x
		}
		c.vars = append(c.vars, v)
	}
	c.procs = make([]*testenv.Proc, n)
	for i := range c.procs {
		c.procs[i] = testenv.StartProc(t, env.ProcEnv(c.vars[i]))
	}
	for _, p := range c.procs {
		if !seesMembers(t, p.Addr, n, 20*time.Second) {
			c.dump()
			v, _ := viewCluster(t, p.Addr)
			t.Fatalf("%s does not see %d members: %+v", p.Addr, n, v)
		}
	}
	return c
}

// dump logs every node's view and the end of its log, for a cluster that
// did not form.
func (c *testCluster) dump() {
	c.t.Helper()
	for i, p := range c.procs {
		v, _ := viewCluster(c.t, p.Addr)
		logs := p.Logs()
		if len(logs) > 4000 {
			logs = logs[len(logs)-4000:]
		}
		c.t.Logf("node %d (%s) sees %+v; its log ends:\n%s", i, p.Addr, v, logs)
	}
}

// restart starts node i again with the same ports.
func (c *testCluster) restart(i int) {
	c.procs[i] = testenv.StartProc(c.t, c.env.ProcEnv(c.vars[i]))
}

type clusterView struct {
	Node    string `json:"node"`
	Members []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Rooms int64  `json:"rooms"`
	} `json:"members"`
}

func viewCluster(t *testing.T, addr string) (clusterView, bool) {
	t.Helper()
	status, b := testenv.HTTP(t, "GET", "http://"+addr+"/v1/admin/cluster", testenv.Token(t, "ops", "acme", "admin"), nil)
	var v clusterView
	if status != 200 || json.Unmarshal(b, &v) != nil {
		return v, false
	}
	return v, true
}

// waitMembers waits until the node at addr sees n live members.
func waitMembers(t *testing.T, addr string, n int) {
	t.Helper()
	if !seesMembers(t, addr, n, 20*time.Second) {
		v, _ := viewCluster(t, addr)
		t.Fatalf("%s does not see %d members: %+v", addr, n, v)
	}
}

// seesMembers reports whether the node at addr sees n live members within d.
func seesMembers(t *testing.T, addr string, n int, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if v, ok := viewCluster(t, addr); ok && len(v.Members) == n {
			alive := 0
			for _, m := range v.Members {
				if m.State == "alive" {
					alive++
				}
			}
			if alive == n {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// roomNode returns the node id hosting conv, asking through addr.
func roomNode(t *testing.T, addr, conv string) string {
	t.Helper()
	b := testenv.MustHTTP(t, 200, "GET", "http://"+addr+"/v1/admin/rooms/"+conv, testenv.Token(t, "ops", "acme", "admin"), nil)
	var v struct {
		Node string `json:"node"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.Node
}
