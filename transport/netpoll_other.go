//go:build !linux

package transport

import (
	"errors"
	"net"
)

// errNoPoller is why /ws cannot start off Linux: its event loops are
// built on epoll.
var errNoPoller = errors.New("the native WebSocket transport needs Linux (epoll)")

type poller struct{}

type pollEvent struct {
	fd                         int
	readable, writable, ending bool
}

type pollRaw struct{}

func newPoller() (*poller, error)       { return nil, errNoPoller }
func (p *poller) add(*wsConn) error     { return errNoPoller }
func (p *poller) forget(int)            {}
func (p *poller) conn(int) *wsConn      { return nil }
func (p *poller) each(func(*wsConn))    {}
func (p *poller) close()                {}
func newPollEvents() []pollRaw          { return nil }
func takeFD(net.Conn) (int, error)      { return -1, errNoPoller }
func sysRead(int, []byte) (int, error)  { return 0, errNoPoller }
func sysWrite(int, []byte) (int, error) { return 0, errNoPoller }
func isWouldBlock(error) bool           { return false }
func sysShutdownWrite(int)              {}
func sysShutdown(int)                   {}
func sysClose(int)                      {}
func (p *poller) wait(_ []pollRaw, out []pollEvent, _ bool) ([]pollEvent, error) {
	return out, errNoPoller
}
