package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/caasd/caasd/internal/testenv"
)

// BenchmarkRoomsSend is the send path of bench/'s rooms scenario at a
// smaller scale: a caasd process with GOMAXPROCS=1 (on redis-server, kfake
// and FerretDB), ROOMS_BENCH_ROOMS rooms (default 200) of
// ROOMS_BENCH_SIZE members (10) each on its own WebSocket, each room
// getting ROOMS_BENCH_RATE messages per second (10) from its members in
// turn for ROOMS_BENCH_SECONDS (10). It reports caasd's CPU (utime+stime of
// the process) per message and in % of one core, and the send →
// message:new latency. ROOMS_BENCH_PROFILE=file saves caasd's CPU profile
// of the sending phase. Run it with -benchtime=1x.
func BenchmarkRoomsSend(b *testing.B) {
	nrooms := envInt("ROOMS_BENCH_ROOMS", 200)
	size := envInt("ROOMS_BENCH_SIZE", 10)
	perRoom := envInt("ROOMS_BENCH_RATE", 10)
	secs := envInt("ROOMS_BENCH_SECONDS", 10)
	env := testenv.Start(b)
	p := testenv.StartProc(b, env.ProcEnv(map[string]string{
		"GOMAXPROCS": "1", "LOG_LEVEL": "warn",
		"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_LIMIT_PER_HOUR": "100000000", "SPAM_REPEAT_COUNT": "1000000",
		"PERSISTENCE_CONFIRMATION_TIMEOUT_MS": "30000",
	}))
	pid := childPID(b, "caasd")
	admin := testenv.Token(b, "admin-bench", "bench", "admin")
	for r := range nrooms {
		ps := make([]participant, size)
		for m := range size {
			ps[m] = participant{UserID: fmt.Sprintf("u%d-%d", r, m), Role: "member"}
		}
		testenv.MustHTTP(b, 201, "POST", "http://"+p.Addr+"/v1/admin/conversations", admin,
			map[string]any{"conversation_id": fmt.Sprintf("r%d", r), "name": "r", "participants": ps})
	}
	st := &benchStats{}
	conns := make([]*benchConn, nrooms*size)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range conns {
		r, m := i/size, i%size
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			conns[i] = dialBench(b, p.Addr, testenv.Token(b, fmt.Sprintf("u%d-%d", r, m), "bench"), fmt.Sprintf("r%d", r), st)
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.ws.WriteClose(1000, nil)
				_ = c.ws.NetConn().Close()
			}
		}
	}()
	time.Sleep(time.Second)
	rate := nrooms * perRoom
	b.ResetTimer()
	for range b.N {
		st.reset()
		var prof []byte
		profDone := make(chan struct{})
		if path := os.Getenv("ROOMS_BENCH_PROFILE"); path != "" {
			go func() {
				defer close(profDone)
				prof = fetch(b, "http://"+p.Addr+fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(secs-2, 1)), admin)
			}()
		} else {
			close(profDone)
		}
		cpu0 := procCPU(b, pid)
		start := time.Now()
		sent := 0
		total := rate * secs
		for i := range total {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
			r := i % nrooms
			c := conns[r*size+(i/nrooms)%size]
			if c.send(fmt.Sprintf("r%d", r), i) == nil {
				sent++
			}
		}
		wall := time.Since(start)
		cpu := procCPU(b, pid) - cpu0
		<-profDone
		if prof != nil {
			if err := os.WriteFile(os.Getenv("ROOMS_BENCH_PROFILE"), prof, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		want := int64(sent * size)
		deadline := time.Now().Add(10 * time.Second)
		for st.delivered.Load() < want && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(sent), "caasd-µs/msg")
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "caasd-cpu-%")
		b.ReportMetric(float64(sent)/wall.Seconds(), "msgs/s")
		p50, p99 := st.quantiles()
		b.ReportMetric(p50, "p50-ms")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(float64(want-st.delivered.Load()), "lost")
		b.ReportMetric(float64(st.failed.Load()), "failed")
		if st.failed.Load() > 0 {
			logs := p.Logs()
			b.Logf("caasd logs (end):\n%s", logs[max(0, len(logs)-3000):])
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// childPID finds this process's child whose command is name.
func childPID(t testing.TB, name string) int {
	t.Helper()
	me := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		s, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(s, ')')
		if i < 0 || !bytes.Contains(s[:i], []byte("("+name)) {
			continue
		}
		if f := strings.Fields(string(s[i+1:])); len(f) > 1 && f[1] == me {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
			return pid
		}
	}
	t.Fatalf("no child process %s", name)
	return 0
}

// procCPU is utime+stime of pid.
func procCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(s[bytes.LastIndexByte(s, ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond // USER_HZ = 100
}

func fetch(t testing.TB, url, token string) []byte {
	req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("%s: %d %s", url, resp.StatusCode, body)
		return nil
	}
	return body
}

// benchStats counts deliveries and keeps their latencies.
type benchStats struct {
	delivered atomic.Int64
	failed    atomic.Int64
	mu        sync.Mutex
	lat       []time.Duration
}

func (s *benchStats) reset() {
	s.delivered.Store(0)
	s.failed.Store(0)
	s.mu.Lock()
	s.lat = s.lat[:0]
	s.mu.Unlock()
}

func (s *benchStats) quantiles() (p50, p99 float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return 0, 0
	}
	slices.Sort(s.lat)
	q := func(f float64) float64 {
		return float64(s.lat[int(f*float64(len(s.lat)-1))].Microseconds()) / 1000
	}
	return q(0.5), q(0.99)
}

// benchConn is a lean client: it scans frames instead of decoding them.
type benchConn struct {
	ws     *gws.Conn
	st     *benchStats
	joined chan struct{}
	once   sync.Once
	mu     sync.Mutex
	buf    []byte
}

func dialBench(t testing.TB, addr, token, conv string, st *benchStats) *benchConn {
	c := &benchConn{st: st, joined: make(chan struct{})}
	ws, _, err := gws.NewClient(c, &gws.ClientOption{Addr: "ws://" + addr + "/ws?token=" + token + "&batch=1", ReadMaxPayloadSize: 64 << 20, HandshakeTimeout: 10 * time.Second})
	if err != nil {
		t.Error(err)
		return nil
	}
	c.ws = ws
	go ws.ReadLoop()
	_ = ws.WriteString(`{"event":"joinRoom","data":{"conversation_id":"` + conv + `"}}`)
	select {
	case <-c.joined:
	case <-time.After(30 * time.Second):
		t.Errorf("join %s: no room:joined", conv)
	}
	return c
}

// send sends a message whose id carries its send time.
func (c *benchConn) send(conv string, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf[:0]
	b = append(b, `{"event":"sendMessage","data":{"message_id":"b|`...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","conversation_id":"`...)
	b = append(b, conv...)
	b = append(b, `","content":{"type":"text","text":"hello from the rooms benchmark `...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `"}}}`...)
	c.buf = b
	return c.ws.WriteMessage(gws.OpcodeText, b)
}

func (c *benchConn) OnOpen(*gws.Conn)                      {}
func (c *benchConn) OnClose(*gws.Conn, error)              {}
func (c *benchConn) OnPing(ws *gws.Conn, payload []byte)   { _ = ws.WritePong(payload) }
func (c *benchConn) OnPong(*gws.Conn, []byte)              {}
func (c *benchConn) OnMessage(_ *gws.Conn, m *gws.Message) { defer m.Close(); c.frame(m.Bytes()) }

var (
	evNew    = []byte(`"event":"message:new"`)
	evJoined = []byte(`"event":"room:joined"`)
	evFailed = []byte(`"event":"message:failed"`)
	idMark   = []byte(`"message_id":"b|`)
)

// frame handles one frame: a JSON object or, with batch=1, an array of them.
func (c *benchConn) frame(b []byte) {
	now := time.Now().UnixNano()
	for len(b) > 0 {
		i := bytes.Index(b, []byte(`{"event":`))
		if i < 0 {
			return
		}
		b = b[i+1:]
		end := bytes.Index(b, []byte(`{"event":`))
		ev := b
		if end >= 0 {
			ev = b[:end]
		}
		switch {
		case bytes.HasPrefix(ev, evNew):
			if j := bytes.Index(ev, idMark); j >= 0 {
				rest := ev[j+len(idMark):]
				if k := bytes.IndexByte(rest, '|'); k > 0 {
					if t, err := strconv.ParseInt(string(rest[:k]), 10, 64); err == nil {
						c.st.mu.Lock()
						c.st.lat = append(c.st.lat, time.Duration(now-t))
						c.st.mu.Unlock()
					}
				}
			}
			c.st.delivered.Add(1)
		case bytes.HasPrefix(ev, evJoined):
			c.once.Do(func() { close(c.joined) })
		case bytes.HasPrefix(ev, evFailed):
			c.st.failed.Add(1)
		}
	}
}
