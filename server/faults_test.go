package server_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/caasd/caasd/internal/testenv"
)

func TestKafkaRefusingProduceDelaysButLosesNothing(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, nil)
	conversation(t, s, "acme", "conv-kf", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-kf")
	bob := join(t, s, "acme", "bob", "conv-kf")

	fault := env.Kafka.Cluster.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Produce}, Topic: "chat.messages", Err: kerr.NotLeaderForPartition, Count: -1,
	})
	const n = 20
	for i := 0; i < n; i++ {
		alice.Emit("sendMessage", text(fmt.Sprintf("kf-%d", i), "conv-kf", fmt.Sprintf("during the outage %d", i)))
	}
	time.Sleep(2 * time.Second)
	if got := alice.Count("message:accepted"); got != 0 {
		t.Fatalf("%d messages accepted while Kafka refused every produce", got)
	}
	if fault.Hits() == 0 {
		t.Fatal("the fault was never hit")
	}
	fault.Remove()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("kf-%d", i)
		alice.Wait("message:accepted", 20*time.Second, byID(id))
		alice.Wait("message:persisted", 20*time.Second, byID(id))
		bob.Wait("message:new", 5*time.Second, byID(id))
	}
	if c := mongoCount(t, env, bson.D{{Key: "conversation_id", Value: "conv-kf"}}); c != n {
		t.Fatalf("%d messages stored, want %d", c, n)
	}
	if f := alice.Count("message:failed"); f != 0 {
		t.Fatalf("%d messages failed", f)
	}
}

func TestMongoStoppedAndRestartedWhileMessagesFlow(t *testing.T) {
	env := testenv.Start(t)
	s := node(t, env, map[string]string{"PERSISTENCE_CONFIRMATION_TIMEOUT_MS": "1500", "RATE_LIMIT_PER_MINUTE": "1000"})
	conversation(t, s, "acme", "conv-mg", "alice", "bob")
	alice := join(t, s, "acme", "alice", "conv-mg")

	const n = 60
	sent := 0
	send := func(k int) {
		for ; k > 0; k-- {
			alice.Emit("sendMessage", text(fmt.Sprintf("mg-%d", sent), "conv-mg", fmt.Sprintf("text %d", sent)))
			sent++
			time.Sleep(20 * time.Millisecond)
		}
	}
	send(20)
	env.StopMongo()
	status, body := testenv.HTTP(t, "GET", "http://"+s.Addr()+"/readyz", "", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), `"mongo"`) || strings.Contains(string(body), `"mongo":"ok"`) {
		t.Fatalf("/readyz with MongoDB down: %d %s", status, body)
	}
	send(20)
	time.Sleep(2 * time.Second) // long enough for confirmation timeouts and resends
	env.StartMongo(t)
	if status, body := testenv.HTTP(t, "GET", "http://"+s.Addr()+"/readyz", "", nil); status != http.StatusOK {
		t.Fatalf("/readyz with MongoDB back: %d %s", status, body)
	}
	send(20)

	// Every accepted message gets persisted or failed, never silence.
	accepted := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("mg-%d", i)
		if _, ok := alice.TryWait("message:accepted", time.Until(deadline), byID(id)); !ok {
			if _, failed := alice.TryWait("message:failed", time.Second, byID(id)); !failed {
				t.Fatalf("%s: neither accepted nor failed", id)
			}
			continue
		}
		accepted[id] = true
		for {
			if _, ok := alice.TryWait("message:persisted", 100*time.Millisecond, byID(id)); ok {
				break
			}
			if _, ok := alice.TryWait("message:failed", 100*time.Millisecond, byID(id)); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s accepted but no persisted or failed", id)
			}
		}
	}
	if len(accepted) != n {
		t.Fatalf("%d of %d accepted (MongoDB is not on the accept path)", len(accepted), n)
	}
	// Every accepted message is in MongoDB exactly once, failed-confirmation
	// ones included: Kafka kept them and the persister wrote them later.
	for time.Now().Before(deadline) {
		if mongoCount(t, env, bson.D{{Key: "conversation_id", Value: "conv-mg"}}) >= int64(n) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for id := range accepted {
		if c := mongoCount(t, env, bson.D{{Key: "tenant_id", Value: "acme"}, {Key: "message_id", Value: id}}); c != 1 {
			t.Fatalf("%s stored %d times, want 1", id, c)
		}
	}
}

// rawSlowClient opens a WebSocket by hand and never reads from it.
func rawSlowClient(t *testing.T, addr, token string) net.Conn {
	t.Helper()
	// A small receive buffer, so the kernel does not absorb megabytes of
	// fan-out on the client's behalf.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(conn, "GET /ws?token=%s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", token, addr, key)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	return conn
}

// wsText frames a masked client text message.
func wsText(payload []byte) []byte {
	var b []byte
	b = append(b, 0x81)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 65536:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		panic("too long")
	}
	mask := []byte{1, 2, 3, 4}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	_, body := testenv.HTTP(t, "GET", "http://"+addr+"/metrics", "", nil)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// heapAfterGC collects garbage in the caasd process (through pprof) and
// returns its heap in use.
func heapAfterGC(t *testing.T, addr string) float64 {
	t.Helper()
	testenv.MustHTTP(t, 200, "GET", "http://"+addr+"/debug/pprof/heap?gc=1", testenv.Token(t, "ops", "acme", "admin"), nil)
	return metric(t, addr, "go_memstats_heap_inuse_bytes")
}

func TestSlowConsumerIsDisconnectedAndMemoryStaysFlat(t *testing.T) {
	env := testenv.Start(t)
	// caasd runs as its own process so that its memory is its own: the
	// broker and MongoDB-wire server live in this test process.
	p := testenv.StartProc(t, env.ProcEnv(map[string]string{
		"WS_OUTBOUND_QUEUE": "256", "RATE_LIMIT_PER_MINUTE": "100000", "RATE_LIMIT_PER_HOUR": "1000000", "LOG_LEVEL": "warn",
		// Fan-out memory is what is measured: no persister, and confirmations
		// give up fast (without waiting for a persister that is not there)
		// so that nothing waits for them at measurement time.
		"PERSISTER_ENABLED": "false", "PERSISTENCE_CONFIRMATION_TIMEOUT_MS": "300", "PERSISTENCE_MAX_ATTEMPTS": "1",
		"PERSISTENCE_BEHIND_WAIT_S": "0",
	}))
	testenv.MustHTTP(t, 201, "POST", "http://"+p.Addr+"/v1/admin/conversations", testenv.Token(t, "ops", "acme", "admin"),
		map[string]any{"conversation_id": "conv-slow", "participants": []map[string]string{{"user_id": "alice", "role": "owner"}, {"user_id": "sloth", "role": "member"}}})

	sloth := rawSlowClient(t, p.Addr, testenv.Token(t, "sloth", "acme"))
	if _, err := sloth.Write(wsText([]byte(`{"event":"joinRoom","data":{"conversation_id":"conv-slow"}}`))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// alice sends without joining: her own client stores only confirmations.
	alice := testenv.Dial(t, p.Addr, testenv.Token(t, "alice", "acme"), "")
	big := strings.Repeat("x", 3900)
	sent := 0
	send := func(n int) {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("s-%d", sent)
			alice.Emit("sendMessage", text(id, "conv-slow", fmt.Sprintf("%d %s", sent, big)))
			sent++
			if sent%50 == 0 {
				alice.Wait("message:accepted", 20*time.Second, byID(id))
			}
		}
	}
	send(1500) // 6 MB for a client that reads nothing
	deadline := time.Now().Add(20 * time.Second)
	for metric(t, p.Addr, "socket_slow_consumers_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the client that does not read was not disconnected; members online %v, connections %v\n%s", metric(t, p.Addr, "rooms_member_count"), metric(t, p.Addr, "socket_connections"), p.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Measure once everything sent is confirmed: pending confirmations hold
	// their records until then.
	settle := func() float64 {
		last := fmt.Sprintf("s-%d", sent-1)
		deadline := time.Now().Add(90 * time.Second)
		for {
			if _, ok := alice.TryWait("message:persisted", 200*time.Millisecond, byID(last)); ok {
				break
			}
			if _, ok := alice.TryWait("message:failed", 200*time.Millisecond, byID(last)); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no confirmation of %s", last)
			}
		}
		return heapAfterGC(t, p.Addr)
	}
	h1 := settle()
	send(2000) // 8 MB more
	h2 := settle()
	t.Logf("caasd heap in use: %.1f MiB after the first 6 MB of fan-out, %.1f MiB after 8 MB more", h1/(1<<20), h2/(1<<20))
	if h2-h1 > 4<<20 {
		t.Fatalf("heap grew by %.1f MiB while a client did not read", (h2-h1)/(1<<20))
	}
	// The server closed the socket: reading drains what the kernel holds, then ends.
	_ = sloth.SetReadDeadline(time.Now().Add(20 * time.Second))
	nRead, err := io.Copy(io.Discard, sloth)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("socket still open after %d bytes", nRead)
	}
	if nRead >= int64(sent*3900) {
		t.Fatalf("the slow client got everything (%d bytes): it was not cut off", nRead)
	}
	t.Logf("the slow client got %d KiB of %d KiB before it was cut off", nRead>>10, sent*3900>>10)
	// The others are not disturbed.
	alice.Emit("sendMessage", text("after", "conv-slow", "still fine"))
	alice.Wait("message:accepted", 20*time.Second, byID("after"))
}
