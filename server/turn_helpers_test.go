package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	pionturn "github.com/pion/turn/v4"
)

// The coturn helpers are copied from turn/coturn_test.go (test files
// cannot be imported).

// coturnRealm is the realm of every test coturn; turn.LegacyServer uses it too.
const coturnRealm = "caas.local"

// startCoturn starts coturn in TURN REST mode (--use-auth-secret) on
// 127.0.0.1 and a free port, waits until it answers, and returns the port
// and an idempotent stop function (also run at cleanup).
func startCoturn(t testing.TB, secret string) (port int, stop func()) {
	t.Helper()
	port = freeUDPTCPPort(t)
	return port, runCoturn(t, secret, port)
}

// runCoturn starts coturn with secret on port and returns its stop function.
func runCoturn(t testing.TB, secret string, port int) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		t.Fatalf("coturn's turnserver is not installed (%v): run `apt-get install -y coturn`", err)
	}
	dir := t.TempDir()
	minPort := 20000 + mrand.IntN(39000)
	args := []string{
		"-n", "--use-auth-secret", "--static-auth-secret=" + secret, "--realm=" + coturnRealm,
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port=" + strconv.Itoa(port),
		"--min-port=" + strconv.Itoa(minPort), "--max-port=" + strconv.Itoa(minPort+200),
		"--no-cli", "--no-dtls", "--no-tls", "--no-rfc5780", "--no-software-attribute",
		"--log-file=stdout", "--simple-log", "--allow-loopback-peers",
		"--pidfile=" + filepath.Join(dir, "p.pid"), "--userdb=" + filepath.Join(dir, "turndb"),
	}
	out := &logBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start turnserver: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(3 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("coturn on port %d output:\n%s", port, out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("turnserver exited early:\n%s", out.String())
		default:
		}
		err := coturnReady(port)
		if err == nil {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("turnserver on port %d not ready: %v\n%s", port, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// coturnReady checks that the TCP port accepts and a STUN binding over UDP
// gets an answer.
func coturnReady(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	_ = c.Close()
	u, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = u.Close() }()
	if _, err := u.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw); err != nil {
		return err
	}
	_ = u.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1500)
	n, err := u.Read(buf)
	if err != nil {
		return err
	}
	if !stun.IsMessage(buf[:n]) {
		return errors.New("not a STUN answer")
	}
	return nil
}

// freeUDPTCPPort returns a port on 127.0.0.1 free for both TCP and UDP.
func freeUDPTCPPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatal("no free TCP+UDP port found")
	return 0
}

// turnAllocate connects to a turn: URL as a WebRTC client would, allocates
// a relay with the credentials and checks that data flows both ways
// between the relay and a local UDP peer. It returns the allocation error.
func turnAllocate(t testing.TB, rawURL, username, credential string) error {
	t.Helper()
	scheme, rest, _ := strings.Cut(rawURL, ":")
	hostport, query, _ := strings.Cut(rest, "?")
	transport := strings.TrimPrefix(query, "transport=")
	var conn net.PacketConn
	switch {
	case scheme == "turn" && transport == "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	case scheme == "turn" && transport == "tcp":
		c, err := net.DialTimeout("tcp", hostport, 2*time.Second)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		conn = pionturn.NewSTUNConn(c)
	case scheme == "turns":
		d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test certificate
		c, err := d.DialContext(context.Background(), "tcp", hostport)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		conn = pionturn.NewSTUNConn(c)
	default:
		t.Fatalf("unexpected URL %q", rawURL)
	}
	defer func() { _ = conn.Close() }()
	client, err := pionturn.NewClient(&pionturn.ClientConfig{
		TURNServerAddr: hostport, Username: username, Password: credential, Conn: conn,
		LoggerFactory: &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := client.Allocate()
	if err != nil {
		return err
	}
	defer func() { _ = relay.Close() }()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = peer.Close() }()
	// 9+ byte payloads: pion's STUNConn waits for more on shorter ChannelData.
	const ping, pong = "ping from client via relay", "pong from peer via relay"
	if _, err := relay.WriteTo([]byte(ping), peer.LocalAddr()); err != nil {
		t.Fatalf("relay write: %v", err)
	}
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != ping {
		t.Fatalf("peer read via relay: %q, %v", buf[:n], err)
	}
	if _, err := peer.WriteTo([]byte(pong), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err = relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != pong {
		t.Fatalf("relay read from peer: %q, %v", buf[:n], err)
	}
	return nil
}

// assertUnauthorized checks that err is coturn's 401 answer, as pion reports it.
func assertUnauthorized(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: allocate succeeded, want 401", what)
	}
	var te *stun.TurnError
	if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeUnauthorized {
		t.Fatalf("%s: error %v (%T), want a *stun.TurnError with code 401", what, err, err)
	}
}

// logBuffer is a bytes.Buffer safe for concurrent writers and readers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
