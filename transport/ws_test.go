package transport

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestWSSplitAndFragmentedFramesArriveWhole(t *testing.T) {
	_, rec, addr := startWS(t, WSConfig{})
	c := dialRaw(t, addr, "")
	// One frame, a byte per write.
	for _, b := range clientFrame(t, 0x81, []byte(`{"event":"a","data":{"x":1}}`)) {
		c.write([]byte{b})
		time.Sleep(time.Millisecond)
	}
	if e := waitEvent(t, rec); e.name != "a" || e.data != `{"x":1}` {
		t.Fatalf("got %+v", e)
	}
	// Three fragments with a ping between them, in one write.
	var b []byte
	b = append(b, clientFrame(t, 0x01, []byte(`{"event":"b",`))...)
	b = append(b, clientFrame(t, 0x89, []byte("hi"))...)
	b = append(b, clientFrame(t, 0x00, []byte(`"data":`))...)
	b = append(b, clientFrame(t, 0x80, []byte(`[1,2]}`))...)
	c.write(b)
	if op, p := c.read(); op != opPong || string(p) != "hi" {
		t.Fatalf("want pong hi, got %d %q", op, p)
	}
	if e := waitEvent(t, rec); e.name != "b" || e.data != `[1,2]` {
		t.Fatalf("got %+v", e)
	}
	// Bad input in a whole frame gets an error event; the socket stays.
	c.write(clientFrame(t, 0x81, []byte(`{"event":`)))
	op, p := c.read()
	if op != opText || !strings.Contains(string(p), `"invalid_message"`) {
		t.Fatalf("got %d %s", op, p)
	}
	c.write(clientFrame(t, 0x81, []byte(`{"event":"c"}`)))
	if e := waitEvent(t, rec); e.name != "c" {
		t.Fatalf("got %+v", e)
	}
}

func TestWSBatchedFramesKeepOrder(t *testing.T) {
	forEachWritePath(t, func(t *testing.T, ring bool) {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
				_, rec, addr := startWS(t, WSConfig{WriteRing: ring})
				q := ""
				if batch {
					q = "&batch=1"
				}
				c := dialRaw(t, addr, q)
				c.write(clientFrame(t, 0x81, []byte(`{"event":"hello"}`)))
				waitEvent(t, rec)
				conn := rec.conn(0)
				// Frames go one by one and in groups of up to five (SendAll).
				const n = 200
				for i, k := 0, 1; i < n; i, k = i+k, k%5+1 {
					group := make([]*Frame, 0, k)
					for j := i; j < min(i+k, n); j++ {
						group = append(group, NewFrame("n", []byte(fmt.Sprint(j))))
					}
					ok := false
					if len(group) == 1 {
						ok = conn.Send(group[0])
					} else {
						ok = conn.SendAll(group)
					}
					if !ok {
						t.Fatalf("send %d refused", i)
					}
				}
				next, arrays := 0, 0
				for next < n {
					op, p := c.read()
					if op != opText {
						t.Fatalf("opcode %d", op)
					}
					var evs []struct {
						Event string `json:"event"`
						Data  int    `json:"data"`
					}
					if p[0] == '[' {
						if !batch {
							t.Fatalf("array without batch=1: %.40s", p)
						}
						arrays++
					} else {
						p = append(append([]byte{'['}, p...), ']')
					}
					if err := json.Unmarshal(p, &evs); err != nil {
						t.Fatalf("%v: %.80s", err, p)
					}
					for _, e := range evs {
						if e.Event != "n" || e.Data != next {
							t.Fatalf("event %d: got %+v", next, e)
						}
						next++
					}
				}
				t.Logf("%d events, %d arrays", n, arrays)
			})
		}
	})
}

func TestWSCloseHandshakes(t *testing.T) {
	forEachWritePath(t, func(t *testing.T, ring bool) {
		_, rec, addr := startWS(t, WSConfig{WriteRing: ring})
		// The client closes: its code comes back and the connection is released.
		c := dialRaw(t, addr, "")
		c.write(clientFrame(t, 0x88, []byte{0x0F, 0xA0, 'b', 'y', 'e'})) // 4000
		if code := c.readClose(); code != 4000 {
			t.Fatalf("echoed close %d", code)
		}
		_ = c.conn.Close()
		waitClosed(t, rec)
		// The server closes with a code, which the client sees.
		c2 := dialRaw(t, addr, "")
		c2.write(clientFrame(t, 0x81, []byte(`{"event":"x"}`)))
		waitEvent(t, rec)
		rec.conn(1).Close(CloseServiceRestart, "server shutting down")
		if code := c2.readClose(); code != CloseServiceRestart {
			t.Fatalf("close %d", code)
		}
		c2.write(clientFrame(t, 0x88, []byte{0x03, 0xF4}))
		waitClosed(t, rec)
		// A protocol fault: an unmasked frame gets 1002; a client that does not
		// answer the close is cut after the grace period.
		c3 := dialRaw(t, addr, "")
		c3.write([]byte{0x81, 0x01, 'a'})
		if code := c3.readClose(); code != closeProtocolError {
			t.Fatalf("close %d", code)
		}
		waitClosed(t, rec)
		// A frame above the hard limit gets 1009 before it is buffered.
		c4 := dialRaw(t, addr, "")
		c4.write([]byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0x10, 0, 0, 0, 1, 2, 3, 4})
		if code := c4.readClose(); code != CloseTooBig {
			t.Fatalf("close %d", code)
		}
	})
}

func TestWSSlowConsumerIsCutOffOthersAreNot(t *testing.T) {
	forEachWritePath(t, func(t *testing.T, ring bool) {
		big := NewFrame("big", []byte(`"`+strings.Repeat("x", 64<<10)+`"`))
		for _, c := range []struct {
			name string
			send func(Conn) bool
		}{
			{"Send", func(c Conn) bool { return c.Send(big) }},
			{"SendAll", func(c Conn) bool { return c.SendAll([]*Frame{big, big, big}) }},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, rec, addr := startWS(t, WSConfig{OutboundQueueLen: 64, WriteTimeout: time.Second, WriteRing: ring})
				slow := dialRaw(t, addr, "")
				slow.write(clientFrame(t, 0x81, []byte(`{"event":"s"}`)))
				waitEvent(t, rec)
				fast := dialRaw(t, addr, "")
				fast.write(clientFrame(t, 0x81, []byte(`{"event":"f"}`)))
				waitEvent(t, rec)
				sent := 0
				deadline := time.Now().Add(10 * time.Second)
				for c.send(rec.conn(0)) {
					sent++
					if time.Now().After(deadline) {
						t.Fatal("a client that does not read was never cut off")
					}
					if sent%16 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
				waitClosed(t, rec)
				t.Logf("cut off after %d sends of 64 KiB frames", sent)
				// The other connection is untouched.
				if !rec.conn(1).Send(NewFrame("ok", nil)) {
					t.Fatal("fast connection refused a frame")
				}
				if op, p := fast.read(); op != opText || !strings.Contains(string(p), `"ok"`) {
					t.Fatalf("fast got %d %s", op, p)
				}
			})
		}
	})
}

func TestWSConnectionsCostNoGoroutine(t *testing.T) {
	_, rec, addr := startWS(t, WSConfig{})
	before := runtime.NumGoroutine()
	const n = 300
	clients := make([]*rawClient, n)
	for i := range n {
		clients[i] = dialRaw(t, addr, "")
		clients[i].write(clientFrame(t, 0x81, []byte(`{"event":"hi"}`)))
	}
	for range n {
		waitEvent(t, rec)
	}
	// The HTTP server's goroutines end with their hijacked requests.
	var after int
	for range 100 {
		if after = runtime.NumGoroutine(); after-before < 10 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after-before >= 10 {
		t.Fatalf("%d goroutines for %d idle connections", after-before, n)
	}
	for _, c := range clients {
		_ = c.conn.Close()
	}
	for range n {
		waitClosed(t, rec)
	}
}

// TestWSReadingWhileWritingManyLosesNothing: 200 clients send numbered
// frames while the server writes to all of them, so that the poller reads
// between and during long flush passes. Every client's frames arrive once
// and in order, and every client gets every event in order. One P, as
// caasd runs in the benchmarks: the poller then waits for the flusher's
// passes to step aside.
func TestWSReadingWhileWritingManyLosesNothing(t *testing.T) {
	forEachWritePath(t, func(t *testing.T, ring bool) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		_, rec, addr := startWS(t, WSConfig{OutboundQueueLen: 4096, WriteRing: ring})
		const clients, frames, events = 200, 40, 60
		cs := make([]*rawClient, clients)
		for i := range cs {
			cs[i] = dialRaw(t, addr, "&batch=1")
			cs[i].write(clientFrame(t, 0x81, fmt.Appendf(nil, `{"event":"hello","data":%d}`, i)))
		}
		conns := make([]Conn, clients) // by client
		for range clients {
			e := waitEvent(t, rec)
			var i int
			if _, err := fmt.Sscan(e.data, &i); err != nil || e.name != "hello" {
				t.Fatalf("%+v: %v", e, err)
			}
			conns[i] = e.c
		}
		for i := range conns {
			if conns[i] == nil {
				t.Fatalf("client %d has no connection", i)
			}
		}
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for k := range events {
				f := NewFrame("n", []byte(fmt.Sprint(k)))
				for _, c := range conns {
					c.Send(f)
				}
				time.Sleep(time.Millisecond)
			}
		}()
		errs := make(chan error, clients)
		for i, c := range cs {
			go func() {
				for k := range frames {
					if _, err := c.conn.Write(clientFrame(t, 0x81, fmt.Appendf(nil, `{"event":"f","data":[%d,%d]}`, i, k))); err != nil {
						errs <- err
						return
					}
					time.Sleep(time.Millisecond)
				}
				_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
				next := 0
				for next < events {
					_, p, err := c.readFrame()
					if err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
						return
					}
					if p[0] != '[' {
						p = append(append([]byte{'['}, p...), ']')
					}
					var evs []struct{ Data int }
					if err := json.Unmarshal(p, &evs); err != nil {
						errs <- fmt.Errorf("client %d: %w: %.60s", i, err, p)
						return
					}
					for _, e := range evs {
						if e.Data != next {
							errs <- fmt.Errorf("client %d: event %d, want %d", i, e.Data, next)
							return
						}
						next++
					}
				}
				errs <- nil
			}()
		}
		got := make([]int, clients) // frames received per client
		for range clients * frames {
			e := waitEvent(t, rec)
			var ik [2]int
			if err := json.Unmarshal([]byte(e.data), &ik); err != nil || e.name != "f" {
				t.Fatalf("%+v: %v", e, err)
			}
			if ik[1] != got[ik[0]] {
				t.Fatalf("client %d: frame %d arrived, want %d", ik[0], ik[1], got[ik[0]])
			}
			got[ik[0]]++
		}
		for range clients {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		<-sent
	})
}

// TestWSDataThenEndOfStreamIsSeenWhole: a client that sends a frame and
// closes its socket at once (no close frame) has both taken: the frame's
// event, then the release. The end of stream often comes in the same
// readiness event as the data, behind a read that left the socket empty.
func TestWSDataThenEndOfStreamIsSeenWhole(t *testing.T) {
	_, rec, addr := startWS(t, WSConfig{})
	const conns = 50
	for i := range conns {
		c := dialRaw(t, addr, "")
		c.write(clientFrame(t, 0x81, fmt.Appendf(nil, `{"event":"x","data":{"i":%d}}`, i)))
		_ = c.conn.Close()
	}
	for range conns {
		waitEvent(t, rec)
	}
	for range conns {
		waitClosed(t, rec)
	}
}
