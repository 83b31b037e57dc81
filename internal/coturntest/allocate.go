package coturntest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v4"
)

// Allocate connects to a turn: or turns: URL (turn:host:port?transport=udp,
// turn:host:port?transport=tcp or turns:host:port?transport=tcp) as a
// WebRTC client would, allocates a relay with username and credential
// and, if that works, checks that data flows both ways between the relay
// and a local UDP peer. turns: does not verify the server certificate.
//
// It returns the dial or allocation error, so that callers can assert a
// rejection (coturn's 401 comes back as a *stun.TurnError); any other
// failure, including a relay that does not pass data, fails the test.
func Allocate(t testing.TB, rawURL, username, credential string) error {
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
	case scheme == "turns" && (transport == "tcp" || transport == ""):
		d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed test certificate
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
		TURNServerAddr: hostport,
		Username:       username,
		Password:       credential,
		Conn:           conn,
		LoggerFactory:  &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
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
	// Payloads of 9+ bytes: pion's STUNConn (TCP/TLS) treats a ChannelData
	// frame shorter than 9 bytes as incomplete and waits forever.
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
	if from.String() != relay.LocalAddr().String() {
		t.Fatalf("peer got data from %v, want relay address %v", from, relay.LocalAddr())
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
