package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/logging"
	"github.com/pion/transport/v4/stdnet"
	pionturn "github.com/pion/turn/v4"
)

// probeServer allocates a relay on c over each of its transports in
// parallel and returns the joined errors, each prefixed by its transport.
func (r *Registry) probeServer(ctx context.Context, c ServerConfig) error {
	cred := NewCredentials(c.Secret, r.cfg.ProbeUserID, r.cfg.CredentialTTL, r.cfg.Now())
	errs := make([]error, len(c.Transports))
	var wg sync.WaitGroup
	for i, t := range c.Transports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.probeTransport(ctx, c, t, cred); err != nil {
				errs[i] = fmt.Errorf("%s: %w", t, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// probeTransport performs one TURN Allocate over transport t and releases
// the allocation. It returns when ctx is done at the latest, with every
// goroutine it started stopped.
func (r *Registry) probeTransport(ctx context.Context, c ServerConfig, t Transport, cred Credentials) error {
	port := c.Port
	if t == TransportTLS {
		port = c.TLSPort
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", c.Host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", c.Host, err)
	}
	if len(ips) == 0 {
		return fmt.Errorf("resolve %s: no address", c.Host)
	}
	addr := netip.AddrPortFrom(ips[0].Unmap(), uint16(port)).String()

	conn, err := dialProbe(ctx, t, addr, c.Host, r.cfg.ProbeInsecureSkipVerify)
	if err != nil {
		return err
	}
	return allocateOnce(ctx, conn, addr, c.Realm, cred)
}

// dialProbe opens the client side of transport t to addr, wrapping stream
// connections so that pion can use them as a packet connection.
func dialProbe(ctx context.Context, t Transport, addr, serverName string, insecure bool) (net.PacketConn, error) {
	switch t {
	case TransportUDP:
		var lc net.ListenConfig
		network := "udp4"
		if netip.MustParseAddrPort(addr).Addr().Is6() {
			network = "udp6"
		}
		pc, err := lc.ListenPacket(ctx, network, ":0")
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		return pc, nil
	case TransportTCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		return pionturn.NewSTUNConn(conn), nil
	case TransportTLS:
		d := tls.Dialer{Config: &tls.Config{
			ServerName:         serverName,
			InsecureSkipVerify: insecure, //nolint:gosec // opt-in via Config.ProbeInsecureSkipVerify.
			MinVersion:         tls.VersionTLS12,
		}}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		return pionturn.NewSTUNConn(conn), nil
	default:
		return nil, fmt.Errorf("unknown transport %q", string(t))
	}
}

// allocateOnce runs a pion TURN client on conn (which it closes), allocates
// a UDP relay and releases it. ctx bounds the whole exchange.
func allocateOnce(ctx context.Context, conn net.PacketConn, addr, realm string, cred Credentials) error {
	std, err := stdnet.NewNet()
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("net: %w", err)
	}
	client, err := pionturn.NewClient(&pionturn.ClientConfig{
		TURNServerAddr: addr,
		Username:       cred.Username,
		Password:       cred.Password,
		Realm:          realm,
		Conn:           conn,
		Net:            literalNet{std},
		LoggerFactory:  &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled},
	})
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("client: %w", err)
	}

	// Our own read loop instead of client.Listen, so that we can wait for it.
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 1600)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = client.HandleInbound(buf[:n], from)
		}
	}()

	type result struct {
		relay net.PacketConn
		err   error
	}
	allocated := make(chan result, 1)
	go func() {
		relay, err := client.Allocate()
		allocated <- result{relay, err}
	}()

	var res result
	select {
	case res = <-allocated:
		if res.err != nil {
			res.err = fmt.Errorf("allocate: %w", res.err)
		}
	case <-ctx.Done():
		client.Close() // fails the pending transaction, so Allocate returns
		_ = conn.Close()
		res = <-allocated
		res.err = fmt.Errorf("allocate: %w", ctx.Err())
	}
	if res.relay != nil {
		_ = res.relay.Close() // sends a zero-lifetime Refresh without waiting
	}
	client.Close()
	_ = conn.Close()
	<-readDone
	return res.err
}

// literalNet resolves literal "ip:port" addresses of either family; pion's
// client otherwise asks for "udp4" only. The probe resolves names itself.
type literalNet struct{ *stdnet.Net }

// ResolveUDPAddr implements transport.Net.
func (n literalNet) ResolveUDPAddr(_, address string) (*net.UDPAddr, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", address, err)
	}
	return net.UDPAddrFromAddrPort(ap), nil
}
