package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// arrivalConn is a client socket that knows when the data it read reached
// it: the kernel's receive timestamp of the newest segment of each read
// (SO_TIMESTAMPNS). On loopback that is the moment caasd's write ran, so a
// latency measured to it is caasd's alone; the load tool's own wait for its
// core, shared here with Kafka, MongoDB and Redis, comes after it. On a
// real network each client has its own host and reads at once.
//
// An event is stamped with the arrival of the newest segment read up to it,
// never earlier than its own bytes, so the latency is never understated.
type arrivalConn struct {
	*net.TCPConn
	raw     syscall.RawConn
	oob     []byte
	arrived int64 // unix nanos of the newest segment read; the reader only
}

// arrivalDialer dials TCP from a source address and turns on receive
// timestamps; it is the load tool's gws.Dialer.
type arrivalDialer struct{ d *net.Dialer }

// Dial opens an arrivalConn.
func (a arrivalDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := a.d.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: not TCP (%T)", addr, c)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, 1)
	}); err != nil || serr != nil {
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: SO_TIMESTAMPNS: %w %w", addr, err, serr)
	}
	return &arrivalConn{TCPConn: tc, raw: raw, oob: make([]byte, unix.CmsgSpace(16))}, nil
}

// Read reads like net.Conn's Read and records the data's arrival.
func (c *arrivalConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n, oobn int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), b, c.oob, 0)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	if ts, ok := arrivalStamp(c.oob[:oobn]); ok {
		c.arrived = ts
	} else {
		c.arrived = time.Now().UnixNano()
	}
	return n, nil
}

// arrivalStamp finds SCM_TIMESTAMPNS_NEW (a 64-bit timespec) in oob
// without allocating: it runs for every read.
func arrivalStamp(oob []byte) (int64, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0, false
		}
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		data := oob[unix.SizeofCmsghdr:l]
		if level == unix.SOL_SOCKET && typ == unix.SO_TIMESTAMPNS_NEW && len(data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(data[8:16]))
			return sec*int64(time.Second) + nsec, true
		}
		oob = oob[min(unix.CmsgSpace(l-unix.SizeofCmsghdr), len(oob)):]
	}
	return 0, false
}

// arrival is when the bytes of the frame just read reached the client and
// when the load tool read them (unix nanos).
func (c *arrivalConn) arrival(read int64) int64 {
	if c.arrived == 0 || c.arrived > read {
		return read
	}
	return c.arrived
}
