package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
)

// sioClientDir holds the Node scripts driving the real socket.io-client.
const sioClientDir = "../transport/socketio/testdata/client"

// sioNode returns the node binary, failing the test when node or the npm
// packages are missing.
func sioNode(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sioClientDir, "node_modules", "socket.io-client", "package.json")); err != nil {
		t.Fatalf("socket.io-client is not installed: run: npm ci --prefix transport/socketio/testdata/client (%v)", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (Node.js 20 or later is needed): %v", err)
	}
	return node
}

// sioLine is one line a Node client printed (see client.js).
type sioLine struct {
	T         string          `json:"t"`
	Name      string          `json:"name"`
	Data      json.RawMessage `json:"data"`
	ID        int             `json:"id"`
	Message   string          `json:"message"`
	Reason    string          `json:"reason"`
	Transport string          `json:"transport"`
}

func (l sioLine) event() testenv.Event { return testenv.Event{Name: l.Name, Data: l.Data} }

// sioClient is a Node process running client.js: a real socket.io-client.
type sioClient struct {
	t      testing.TB
	stdin  io.WriteCloser
	mu     sync.Mutex
	cond   *sync.Cond
	lines  []sioLine
	taken  []bool
	exited bool
	stderr bytes.Buffer
	done   chan struct{}
	nextID int
}

// startSIO runs client.js against base (http://host:port) with token ("":
// no auth) and transports ("": the client's default).
func startSIO(t testing.TB, base, token, transports string) *sioClient {
	t.Helper()
	node := sioNode(t)
	cmd := exec.Command(node, "client.js")
	cmd.Dir = sioClientDir
	cmd.Env = append(os.Environ(), "SIO_URL="+base, "SIO_TRANSPORTS="+transports, "SIO_TIMEOUT_MS=120000")
	if token != "" {
		cmd.Env = append(cmd.Env, "SIO_TOKEN="+token)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &sioClient{t: t, done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	cmd.Stderr = &lockedWriter{mu: &c.mu, w: &c.stderr}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("node client.js: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var l sioLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l = sioLine{T: "garbage", Message: sc.Text()}
			}
			c.mu.Lock()
			c.lines = append(c.lines, l)
			c.taken = append(c.taken, false)
			c.cond.Broadcast()
			c.mu.Unlock()
		}
		_ = cmd.Wait()
		c.mu.Lock()
		c.exited = true
		c.cond.Broadcast()
		c.mu.Unlock()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// sioConnect starts a client, waits for its connect and joins conv.
func sioConnect(t testing.TB, base, token, transports, conv string) *sioClient {
	t.Helper()
	c := startSIO(t, base, token, transports)
	c.Wait("connect", "", 15*time.Second, nil)
	c.Emit("joinRoom", map[string]any{"conversation_id": conv})
	c.Wait("event", "room:joined", 15*time.Second, nil)
	return c
}

// Emit emits an event without a callback.
func (c *sioClient) Emit(name string, data any) { c.send(map[string]any{"emit": name, "data": data}) }

// EmitAck emits an event with a callback; the ack line carries the id.
func (c *sioClient) EmitAck(name string, data any) int {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	c.send(map[string]any{"emit": name, "data": data, "ack": id})
	return id
}

func (c *sioClient) send(cmd any) {
	b, err := json.Marshal(cmd)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Errorf("write to node: %v", err)
	}
}

// Wait takes the first line not taken yet of kind t (and event name, if
// not empty) matching pred, waiting up to d.
func (c *sioClient) Wait(t, name string, d time.Duration, pred func(sioLine) bool) sioLine {
	c.t.Helper()
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for i, l := range c.lines {
			if !c.taken[i] && l.T == t && (name == "" || l.Name == name) && (pred == nil || pred(l)) {
				c.taken[i] = true
				return l
			}
		}
		if time.Now().After(deadline) || c.exited {
			last := c.lines[max(0, len(c.lines)-8):]
			c.t.Fatalf("no %s %s within %v (exited %v); last lines %+v; stderr %s", t, name, d, c.exited, last, c.stderr.String())
		}
		c.cond.Wait()
	}
}

// Events returns every event named name received so far.
func (c *sioClient) Events(name string) []sioLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sioLine
	for _, l := range c.lines {
		if l.T == "event" && l.Name == name {
			out = append(out, l)
		}
	}
	return out
}

// Index returns the position of the first line of kind t, or -1.
func (c *sioClient) Index(t string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, l := range c.lines {
		if l.T == t {
			return i
		}
	}
	return -1
}

// waitCount waits until count() reaches n.
func waitCount(t testing.TB, what string, n int, d time.Duration, count func() int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d within %v", what, count(), n, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seqIDs returns the message ids of message:new events, checking that
// their seqs strictly increase and that no id comes twice.
func seqIDs(t testing.TB, who string, evs []testenv.Event) []string {
	t.Helper()
	ids := make([]string, 0, len(evs))
	seen := map[string]bool{}
	last := int64(0)
	for _, e := range evs {
		var seq int64
		fmt.Sscan(e.Field("seq"), &seq)
		if seq <= last {
			t.Fatalf("%s: seq %d after %d", who, seq, last)
		}
		last = seq
		id := e.Field("message_id")
		if seen[id] {
			t.Fatalf("%s: %s twice", who, id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids
}

func sioEvents(ls []sioLine) []testenv.Event {
	out := make([]testenv.Event, len(ls))
	for i, l := range ls {
		out[i] = l.event()
	}
	return out
}
