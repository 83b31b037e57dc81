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
		waitMembers(t, p.Addr, n)
	}
	return c
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
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v, ok := viewCluster(t, addr); ok && len(v.Members) == n {
			alive := 0
			for _, m := range v.Members {
				if m.State == "alive" {
					alive++
				}
			}
			if alive == n {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	v, _ := viewCluster(t, addr)
	t.Fatalf("%s does not see %d members: %+v", addr, n, v)
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
