// Package coturntest starts real coturn (turnserver) processes on random
// loopback ports and allocates relays on them with the pion/turn client,
// for tests of the turn and server packages. It is imported by tests only.
package coturntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/caasd/caasd/internal/testenv"
)

// options configures one coturn process.
type options struct {
	secret, realm string
	port          int    // plain UDP/TCP port; required
	tlsPort       int    // 0: TLS disabled
	certFile      string // with tlsPort
	keyFile       string // with tlsPort
}

// Start starts coturn in TURN REST mode (--use-auth-secret) with secret
// and realm on 127.0.0.1 and a random free port, waits until it answers
// STUN over UDP and accepts TCP, and returns the port and an idempotent
// stop function. stop (also run by t.Cleanup) kills the process and waits
// for it. A missing turnserver binary fails the test.
func Start(t testing.TB, secret, realm string) (port int, stop func()) {
	t.Helper()
	port = testenv.FreePort(t)
	return port, run(t, options{secret: secret, realm: realm, port: port})
}

// StartOnPort is Start on a given port, for example to bring back a
// server stopped earlier on the same port.
func StartOnPort(t testing.TB, secret, realm string, port int) (stop func()) {
	t.Helper()
	return run(t, options{secret: secret, realm: realm, port: port})
}

// StartTLS is Start with an additional TLS listener on another free port,
// using a fresh self-signed certificate for 127.0.0.1 and localhost.
func StartTLS(t testing.TB, secret, realm string) (port, tlsPort int, stop func()) {
	t.Helper()
	port, tlsPort = testenv.FreePort(t), testenv.FreePort(t)
	cert, key := selfSignedCert(t)
	stop = run(t, options{secret: secret, realm: realm, port: port, tlsPort: tlsPort, certFile: cert, keyFile: key})
	return port, tlsPort, stop
}

// run starts coturn with o and returns its stop function.
func run(t testing.TB, o options) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		t.Fatalf("coturn's turnserver is not installed (%v): run `apt-get install -y coturn`", err)
	}
	dir := t.TempDir()
	minPort := 20000 + mrand.IntN(39000)
	args := []string{
		"-n", // no configuration file
		"--use-auth-secret", "--static-auth-secret=" + o.secret, "--realm=" + o.realm,
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
		"--listening-port=" + strconv.Itoa(o.port),
		"--min-port=" + strconv.Itoa(minPort), "--max-port=" + strconv.Itoa(minPort+200),
		"--no-cli", "--no-dtls", "--no-rfc5780", "--no-software-attribute",
		"--log-file=stdout", "--simple-log", "--allow-loopback-peers",
		"--pidfile=" + filepath.Join(dir, "p.pid"),
		"--userdb=" + filepath.Join(dir, "turndb"),
	}
	if o.tlsPort == 0 {
		args = append(args, "--no-tls")
	} else {
		args = append(args, "--tls-listening-port="+strconv.Itoa(o.tlsPort),
			"--cert="+o.certFile, "--pkey="+o.keyFile)
	}
	out := &testenv.SyncBuffer{}
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
			t.Logf("coturn on port %d output:\n%s", o.port, out.String())
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("turnserver exited early:\n%s", out.String())
		default:
		}
		if err := ready(o.port, o.tlsPort); err == nil {
			return stop
		} else if time.Now().After(deadline) {
			t.Fatalf("turnserver on port %d not ready: %v\n%s", o.port, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready checks that a STUN binding over UDP gets an answer and that the
// TCP (and TLS, if any) ports accept connections.
func ready(port, tlsPort int) error {
	for _, p := range []int{port, tlsPort} {
		if p == 0 {
			continue
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), time.Second)
		if err != nil {
			return err
		}
		_ = c.Close()
	}
	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	msg := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := c.Write(msg.Raw); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !stun.IsMessage(buf[:n]) {
		return errors.New("not a STUN answer")
	}
	return nil
}

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and
// localhost and its key to a temporary directory.
func selfSignedCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}
