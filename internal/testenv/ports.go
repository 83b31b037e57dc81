package testenv

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// handedOut holds the ports FreePort gave in this process, so that it
// never gives one twice: a port is free until its process binds it, which
// may be seconds later.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a loopback port free for TCP and UDP a moment ago. It is
// taken below the kernel's ephemeral range, from which every outgoing
// connection and every listener on port 0 gets its port: a port from that
// range could be taken by any of them before the process it is meant for
// binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	lo := ephemeralLow() - 12000
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		p := lo + rand.IntN(12000)
		if handedOut.ports[p] || !bindable(p) {
			continue
		}
		handedOut.ports[p] = true
		return p
	}
	t.Fatal("free port: none found below the ephemeral range")
	return 0
}

// bindable reports whether p can be bound on loopback for TCP and UDP.
func bindable(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo < 13024 {
		return 32768
	}
	return lo
}
