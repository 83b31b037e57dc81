package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// dialer opens benchmark connections to the server under test, spreading
// them over several loopback source addresses so that ephemeral ports do
// not run out.
type dialer struct {
	srv     *server
	addr    string // host:port
	srcs    []net.IP
	next    atomic.Uint64
	readBuf int
	rec     *recorder
}

func newDialer(srv *server, addr string, nsrc, readBuf int, rec *recorder) *dialer {
	d := &dialer{srv: srv, addr: addr, readBuf: readBuf, rec: rec}
	for i := range max(nsrc, 1) {
		d.srcs = append(d.srcs, net.IPv4(127, 0, 0, byte(2+i)))
	}
	return d
}

// conn is one benchmark client: one user on one WebSocket.
type conn struct {
	ws     *gws.Conn
	proto  protocol
	user   string
	token  string
	room   string // the room joined last
	rec    *recorder
	joined chan error
	buf    []byte // sendMessage encoding, used by one sender at a time
	cmdID  uint32 // the last command id (Centrifugo), as buf
}

// dial connects user with or without batch=1.
func (d *dialer) dial(user string, batch bool) (*conn, error) {
	tok, err := d.srv.token(user)
	if err != nil {
		return nil, err
	}
	url := d.srv.proto.url(d.addr, tok, batch)
	src := d.srcs[d.next.Add(1)%uint64(len(d.srcs))]
	c := &conn{proto: d.srv.proto, user: user, token: tok, rec: d.rec, joined: make(chan error, 1)}
	ws, _, err := gws.NewClient(&events{c: c}, &gws.ClientOption{
		Addr:               url,
		ReadBufferSize:     d.readBuf,
		ReadMaxPayloadSize: 64 << 20,
		HandshakeTimeout:   10 * time.Second,
		NewDialer: func() (gws.Dialer, error) {
			return arrivalDialer{&net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}}, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", user, src, err)
	}
	c.ws = ws
	go ws.ReadLoop()
	return c, nil
}

// join joins room conv and waits for the server's answer.
func (c *conn) join(ctx context.Context, conv string, timeout time.Duration) error {
	err := c.proto.join(ctx, c, conv, timeout)
	if err == nil {
		c.room = conv
	}
	return err
}

// send sends one chat message whose id and text carry step and the send
// time: "ld|<step>|<unix nanos>|<tag>".
func (c *conn) send(conv string, step int, tag string) error {
	var id [64]byte
	b := append(id[:0], "ld|"...)
	b = strconv.AppendInt(b, int64(step), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, '|')
	b = append(b, tag...)
	c.buf = c.proto.appendSend(c, c.buf[:0], conv, b)
	return c.ws.WriteMessage(gws.OpcodeText, c.buf)
}

// close closes the socket with 1000.
func (c *conn) close() { _ = c.ws.WriteClose(1000, nil) }

// closeAll closes conns, at most 50 ms per hundred.
func closeAll(conns []*conn) {
	for i, c := range conns {
		if c != nil {
			c.close()
		}
		if i%100 == 99 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// events is a conn's gws event handler.
type events struct{ c *conn }

func (e *events) OnOpen(*gws.Conn) {}

func (e *events) OnClose(_ *gws.Conn, err error) { e.c.rec.closed(err) }

func (e *events) OnPing(ws *gws.Conn, payload []byte) { _ = ws.WritePong(payload) }

func (e *events) OnPong(*gws.Conn, []byte) {}

func (e *events) OnMessage(ws *gws.Conn, m *gws.Message) {
	defer m.Close()
	read := time.Now().UnixNano()
	arrived := read
	if ac, ok := ws.NetConn().(*arrivalConn); ok {
		arrived = ac.arrival(read)
	}
	e.c.proto.frame(e.c.rec, e.c, m.Bytes(), arrived, read)
}

// setup is the outcome of opening a set of connections.
type setup struct {
	Conns      int     `json:"conns"`
	Failed     int     `json:"failed"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"conns_per_s"`
	Latency    Latency `json:"setup_latency"`
	Concurrent int     `json:"concurrency"`
}

// spec is one connection to open: user, its room, batch or not.
type spec struct {
	user, conv string
	batch      bool
}

// connectAll opens every spec (dial, upgrade, joinRoom → room:joined) with
// at most conc at once; conns[i] is nil where spec i failed.
func connectAll(ctx context.Context, d *dialer, specs []spec, conc int) ([]*conn, setup) {
	conns := make([]*conn, len(specs))
	var h Histogram
	var failed atomic.Int64
	var firstErr sync.Once
	var errText string
	idx := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range max(conc, 1) {
		wg.Go(func() {
			for i := range idx {
				t0 := time.Now()
				c, err := d.dial(specs[i].user, specs[i].batch)
				if err == nil {
					if err = c.join(ctx, specs[i].conv, 30*time.Second); err != nil {
						c.close()
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { errText = err.Error() })
					continue
				}
				h.Record(time.Since(t0))
				conns[i] = c
			}
		})
	}
feed:
	for i := range specs {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	el := time.Since(start)
	ok := len(specs) - int(failed.Load())
	if ctx.Err() != nil && errText == "" {
		errText = ctx.Err().Error()
	}
	return conns, setup{
		Conns: ok, Failed: int(failed.Load()), FirstError: errText,
		Seconds: el.Seconds(), PerSecond: float64(ok) / el.Seconds(),
		Latency: h.Summary(), Concurrent: conc,
	}
}

// live returns the conns that opened.
func live(conns []*conn) []*conn {
	out := make([]*conn, 0, len(conns))
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}
