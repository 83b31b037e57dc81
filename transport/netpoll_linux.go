//go:build linux

package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller is one epoll set of client sockets. Sockets are registered
// edge-triggered for reading and writing once, so a busy socket costs no
// epoll_ctl call per write.
//
// The set is never waited on in a blocking epoll_wait: that would hold the
// runtime's P for the whole wait, and with GOMAXPROCS=1 every other
// goroutine would wait for sysmon to take it back (up to 10 ms a hop).
// Instead the epoll descriptor itself is registered with the runtime's
// poller, and the goroutine parks until it is readable (a nested epoll
// is readable when it has ready events).
type poller struct {
	epfd int
	file *os.File        // epfd, in the runtime's poller; closing it stops wait
	raw  syscall.RawConn // of file

	mu    sync.Mutex
	conns []*wsConn // by fd
}

// pollEvent is what one readiness event says about a socket.
type pollEvent struct {
	fd       int
	readable bool // data, end of stream or an error: read to find out
	writable bool
	// ending is an end of stream or an error: it may sit behind the data
	// with no edge of its own, so the socket is read until it answers.
	ending bool
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("epoll nonblock: %w", err)
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("epoll raw conn: %w", err)
	}
	return &poller{epfd: epfd, file: file, raw: raw}, nil
}

// add registers c's socket.
func (p *poller) add(c *wsConn) error {
	p.mu.Lock()
	if c.fd >= len(p.conns) {
		grown := make([]*wsConn, max(c.fd+1, 2*len(p.conns), 1024))
		copy(grown, p.conns)
		p.conns = grown
	}
	p.conns[c.fd] = c
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		p.forget(c.fd)
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	return nil
}

// forget drops fd from the set; closing the fd removes it from epoll.
func (p *poller) forget(fd int) {
	p.mu.Lock()
	if fd < len(p.conns) {
		p.conns[fd] = nil
	}
	p.mu.Unlock()
}

func (p *poller) conn(fd int) *wsConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fd < len(p.conns) {
		return p.conns[fd]
	}
	return nil
}

// each calls fn for every registered connection.
func (p *poller) each(fn func(*wsConn)) {
	p.mu.Lock()
	cs := make([]*wsConn, 0, len(p.conns))
	for _, c := range p.conns {
		if c != nil {
			cs = append(cs, c)
		}
	}
	p.mu.Unlock()
	for _, c := range cs {
		fn(c)
	}
}

// wait appends the events of ready sockets to out. With block it parks
// until there is at least one; it fails once the poller is closed.
func (p *poller) wait(raw []unix.EpollEvent, out []pollEvent, block bool) ([]pollEvent, error) {
	var n int
	var werr error
	err := p.raw.Read(func(uintptr) bool {
		n, werr = unix.EpollWait(p.epfd, raw, 0)
		if errors.Is(werr, unix.EINTR) {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil || !block
	})
	if err != nil {
		return out, fmt.Errorf("epoll wait: %w", err)
	}
	if werr != nil {
		return out, fmt.Errorf("epoll_wait: %w", werr)
	}
	for _, ev := range raw[:n] {
		out = append(out, pollEvent{
			fd:       int(ev.Fd),
			readable: ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0,
			writable: ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0,
			ending:   ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0,
		})
	}
	return out, nil
}

// close stops wait and closes the set.
func (p *poller) close() { _ = p.file.Close() }

const pollBatch = 256

func newPollEvents() []unix.EpollEvent { return make([]unix.EpollEvent, pollBatch) }

// takeFD takes the socket of a hijacked connection for the poller: a
// duplicate of its descriptor, non-blocking, while the original is closed
// (leaving the runtime's poller).
func takeFD(conn net.Conn) (int, error) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return -1, fmt.Errorf("%w: %T", ErrNotTCP, conn)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("syscall conn: %w", err)
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, fmt.Errorf("control: %w", err)
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup: %w", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("set nonblock: %w", err)
	}
	_ = tc.Close()
	return fd, nil
}

func sysRead(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// sysWrite writes what the socket takes now; a full socket is not an
// error (n < len(b)).
func sysWrite(fd int, b []byte) (int, error) {
	written := 0
	for written < len(b) {
		n, err := unix.Write(fd, b[written:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return written, nil
		case err != nil:
			return written, err
		}
		written += n
	}
	return written, nil
}

func isWouldBlock(err error) bool { return err == unix.EAGAIN }

func sysShutdownWrite(fd int) { _ = unix.Shutdown(fd, unix.SHUT_WR) }
func sysShutdown(fd int)      { _ = unix.Shutdown(fd, unix.SHUT_RDWR) }
func sysClose(fd int)         { _ = unix.Close(fd) }
