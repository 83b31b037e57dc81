package transport

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/caasd/caasd/internal/testenv"
)

// tcpPair returns the server end of a loopback TCP connection as a
// non-blocking descriptor, as the loops hold it, and the client end.
func tcpPair(tb testing.TB) (int, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	fd, err := takeFD(server)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = client.Close()
		sysClose(fd)
	})
	return fd, client
}

// TestSendRingReportsEachSendApart: one call carries a send that goes
// whole, one to a client that reads nothing (the socket takes part of it)
// and one to a socket shut for writing (EPIPE, and no SIGPIPE kills the
// test); each gets its own outcome, as write(2) would have said it.
func TestSendRingReportsEachSendApart(t *testing.T) {
	r, err := newSendRing(passChunk)
	if err != nil {
		t.Fatalf("io_uring is needed here: %v", err)
	}
	defer r.close()
	okFD, okClient := tcpPair(t)
	fullFD, _ := tcpPair(t)
	shutFD, _ := tcpPair(t)
	sysShutdownWrite(shutFD)

	small := []byte(strings.Repeat("caasd ", 200))
	huge := make([]byte, 64<<20) // more than any socket buffer takes
	for round := range 3 {
		sends := []ringSend{{fd: okFD, buf: small}, {fd: fullFD, buf: huge}, {fd: shutFD, buf: small}}
		if err := r.send(sends); err != nil {
			t.Fatal(err)
		}
		if n, err := ringResult(sends[0].res); n != len(small) || err != nil {
			t.Fatalf("round %d: whole send: %d, %v", round, n, err)
		}
		got := make([]byte, len(small))
		if _, err := io.ReadFull(okClient, got); err != nil || !bytes.Equal(got, small) {
			t.Fatalf("round %d: client read %v", round, err)
		}
		if n, err := ringResult(sends[1].res); n >= len(huge) || err != nil {
			t.Fatalf("round %d: send to a full socket: %d of %d, %v", round, n, len(huge), err)
		}
		if _, err := ringResult(sends[2].res); err != unix.EPIPE {
			t.Fatalf("round %d: send to a shut socket: %v, want EPIPE", round, err)
		}
	}
}

// TestRingFailureFallsBackToWrite: a ring the kernel refuses (its
// descriptor made invalid before the server runs) costs no event: the
// chunk is written with write(2), the loop says so once and writes that
// way from then on.
func TestRingFailureFallsBackToWrite(t *testing.T) {
	var logs testenv.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	var ringFD []int
	_, rec, addr := startWSWith(t, WSConfig{WriteRing: true}, logger, func(s *WSServer) {
		for _, l := range s.loops {
			ringFD = append(ringFD, l.ring.fd)
			l.ring.fd = -1
		}
	})
	t.Cleanup(func() {
		for _, fd := range ringFD {
			sysClose(fd)
		}
	})
	c := dialRaw(t, addr, "")
	c.write(clientFrame(t, 0x81, []byte(`{"event":"hello"}`)))
	waitEvent(t, rec)
	for i := range 3 {
		if !rec.conn(0).Send(NewFrame("n", []byte{'0' + byte(i)})) {
			t.Fatalf("frame %d refused", i)
		}
		op, p := c.read()
		if want := `{"event":"n","data":` + string('0'+byte(i)) + `}`; op != opText || string(p) != want {
			t.Fatalf("frame %d: got %d %s, want %s", i, op, p, want)
		}
		time.Sleep(10 * time.Millisecond) // one flush pass each
	}
	if n := strings.Count(logs.String(), "io_uring send failed"); n != 1 {
		t.Fatalf("%d fallback warnings, want 1:\n%s", n, logs.String())
	}
}
