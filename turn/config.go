package turn

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// DefaultRealm is the realm used when a server configuration leaves it empty.
const DefaultRealm = "caas.local"

// DefaultPort is the standard TURN port, used by LegacyServer when no port is given.
const DefaultPort = 3478

// Transport is a client-to-server transport of a TURN server.
type Transport string

// The transports a TURN server can offer.
const (
	// TransportUDP yields turn:host:port?transport=udp.
	TransportUDP Transport = "udp"
	// TransportTCP yields turn:host:port?transport=tcp.
	TransportTCP Transport = "tcp"
	// TransportTLS yields turns:host:tls_port?transport=tcp and needs TLSPort.
	TransportTLS Transport = "tls"
)

// valid reports whether t is one of the known transports.
func (t Transport) valid() bool {
	return t == TransportUDP || t == TransportTCP || t == TransportTLS
}

// ServerConfig describes one TURN server. Secret is the current shared
// secret: credentials are always minted with it. PreviousSecret is kept only
// as metadata for rotation (coturn accepts both while it is configured with
// two static-auth-secret values); it is never used to sign.
type ServerConfig struct {
	// ID names the server uniquely within a registry: letters, digits, '.', '_' or '-', at most 64.
	ID string `json:"id"`
	// Host is the host name or IP address clients and probes connect to.
	Host string `json:"host"`
	// Port is the plain (UDP/TCP) TURN and STUN port.
	Port int `json:"port"`
	// TLSPort is the TURN-over-TLS port; 0 means none.
	TLSPort int `json:"tls_port,omitempty"`
	// Realm is the coturn realm; empty means DefaultRealm.
	Realm string `json:"realm"`
	// Secret is the current static-auth-secret; it always prints as "[redacted]".
	Secret Secret `json:"secret"`
	// PreviousSecret is the secret being rotated out, or empty.
	PreviousSecret Secret `json:"previous_secret,omitempty"`
	// Transports lists the offered transports; empty means udp and tcp.
	Transports []Transport `json:"transports"`
}

// withDefaults returns a copy with an owned Transports slice, a lower-case
// transport list and the default realm and transports filled in.
func (c ServerConfig) withDefaults() ServerConfig {
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if len(c.Transports) == 0 {
		c.Transports = []Transport{TransportUDP, TransportTCP}
	} else {
		ts := make([]Transport, len(c.Transports))
		for i, t := range c.Transports {
			ts[i] = Transport(strings.ToLower(strings.TrimSpace(string(t))))
		}
		c.Transports = ts
	}
	return c
}

// Validate checks the configuration (after defaults for Realm and
// Transports are applied) and returns a *FieldError naming the bad field.
func (c ServerConfig) Validate() error {
	c = c.withDefaults()
	bad := func(field, format string, args ...any) error {
		return &FieldError{ServerID: c.ID, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if err := validateID(c.ID); err != nil {
		return bad("id", "%v", err)
	}
	if err := validateHost(c.Host); err != nil {
		return bad("host", "%v", err)
	}
	if c.Port < 1 || c.Port > 65535 {
		return bad("port", "must be 1-65535, got %d", c.Port)
	}
	if c.TLSPort < 0 || c.TLSPort > 65535 {
		return bad("tls_port", "must be 0 (none) or 1-65535, got %d", c.TLSPort)
	}
	if len(c.Realm) > 127 || strings.ContainsFunc(c.Realm, invalidTextRune) {
		return bad("realm", "must be at most 127 printable characters without ',', ';' or '='")
	}
	if c.Secret.IsZero() {
		return bad("secret", "must not be empty")
	}
	seen := make(map[Transport]bool, len(c.Transports))
	for _, t := range c.Transports {
		if !t.valid() {
			return bad("transports", "unknown transport %q (want udp, tcp or tls)", string(t))
		}
		if seen[t] {
			return bad("transports", "transport %q listed twice", string(t))
		}
		seen[t] = true
	}
	if seen[TransportTLS] && c.TLSPort == 0 {
		return bad("tls_port", "required when transports include tls")
	}
	return nil
}

// HasTransport reports whether the server offers transport t.
func (c ServerConfig) HasTransport(t Transport) bool {
	return slices.Contains(c.withDefaults().Transports, t)
}

// STUNURL returns "stun:host:port".
func (c ServerConfig) STUNURL() string {
	return "stun:" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// TURNURLs returns one URL per transport, in the configured order:
// turn:host:port?transport=udp, turn:host:port?transport=tcp and
// turns:host:tls_port?transport=tcp.
func (c ServerConfig) TURNURLs() []string {
	c = c.withDefaults()
	plain := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	urls := make([]string, 0, len(c.Transports))
	for _, t := range c.Transports {
		switch t {
		case TransportUDP:
			urls = append(urls, "turn:"+plain+"?transport=udp")
		case TransportTCP:
			urls = append(urls, "turn:"+plain+"?transport=tcp")
		case TransportTLS:
			urls = append(urls, "turns:"+net.JoinHostPort(c.Host, strconv.Itoa(c.TLSPort))+"?transport=tcp")
		}
	}
	return urls
}

// validateID checks a server ID.
func validateID(id string) error {
	if id == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(id) > 64 {
		return fmt.Errorf("must be at most 64 characters")
	}
	for _, r := range id {
		if !isAlnum(r) && r != '.' && r != '_' && r != '-' {
			return fmt.Errorf("invalid character %q (want letters, digits, '.', '_' or '-')", r)
		}
	}
	return nil
}

// validateHost accepts an IP address or a DNS host name.
func validateHost(h string) error {
	if h == "" {
		return fmt.Errorf("must not be empty")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if len(h) > 253 {
		return fmt.Errorf("host name longer than 253 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not an IP address or a valid host name", h)
		}
		for _, r := range label {
			if !isAlnum(r) && r != '-' && r != '_' {
				return fmt.Errorf("%q is not an IP address or a valid host name", h)
			}
		}
	}
	return nil
}

func isAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

// invalidTextRune rejects control characters and the list separators.
func invalidTextRune(r rune) bool {
	return r < 0x20 || r == 0x7f || r == ',' || r == ';' || r == '='
}
