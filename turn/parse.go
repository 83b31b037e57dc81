package turn

import (
	"fmt"
	"strconv"
	"strings"
)

// LegacyServerID is the ID LegacyServer gives the single configured server.
const LegacyServerID = "default"

// ParseServers parses the list form of TURN server configurations, as found
// in the TURN_SERVERS environment variable:
//
//	TURN_SERVERS="id=a,host=10.0.0.1,port=3478,tls_port=5349,realm=caas.local,secret=s1,transports=udp|tcp;id=b,host=turn.example.com,secret=s2"
//
// Servers are separated by ';' and fields by ','; each field is key=value
// (split at the first '=', so a value may contain '='). Blanks around
// servers, fields, keys and values are ignored, as are empty servers (a
// trailing ';'). The keys are:
//
//	id               required; letters, digits, '.', '_' or '-', at most 64, unique in the list
//	host             required; IP address or DNS name
//	port             TURN/STUN port, default 3478
//	tls_port         TURN-over-TLS port, default 0 (none); required by transport tls
//	realm            default "caas.local"
//	secret           required; current static-auth-secret (cannot contain ',' or ';')
//	previous_secret  optional; the secret being rotated out (metadata only)
//	transports       '|'-separated subset of udp, tcp, tls; default udp|tcp
//
// A tls_port without the tls transport is accepted and unused. Each
// server is validated with ServerConfig.Validate. Errors are *FieldError
// values naming the server's position and the bad field; they never contain
// a secret. An empty or blank string yields no servers and no error.
func ParseServers(s string) ([]ServerConfig, error) {
	var out []ServerConfig
	ids := make(map[string]bool)
	entry := 0
	for raw := range strings.SplitSeq(s, ";") {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		entry++
		c, err := parseServer(raw, entry)
		if err != nil {
			return nil, err
		}
		if ids[c.ID] {
			return nil, &FieldError{Entry: entry, ServerID: c.ID, Field: "id", Reason: "duplicate id", Err: ErrExists}
		}
		ids[c.ID] = true
		out = append(out, c)
	}
	return out, nil
}

// parseServer parses one ','-separated server entry.
func parseServer(raw string, entry int) (ServerConfig, error) {
	c := ServerConfig{Port: DefaultPort}
	bad := func(field, format string, args ...any) error {
		return &FieldError{Entry: entry, ServerID: c.ID, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	seen := make(map[string]bool)
	item := 0
	for field := range strings.SplitSeq(raw, ",") {
		item++
		if strings.TrimSpace(field) == "" {
			continue
		}
		key, value, ok := strings.Cut(field, "=")
		key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
		if !ok || key == "" {
			// The text is not echoed: it may be a misplaced secret.
			return ServerConfig{}, bad("", "item %d is not key=value", item)
		}
		if seen[key] {
			return ServerConfig{}, bad(key, "given twice")
		}
		seen[key] = true
		var err error
		switch key {
		case "id":
			c.ID = value
		case "host":
			c.Host = value
		case "port":
			c.Port, err = parsePort(value)
		case "tls_port":
			c.TLSPort, err = parsePort(value)
		case "realm":
			c.Realm = value
		case "secret":
			c.Secret = Secret(value)
		case "previous_secret":
			c.PreviousSecret = Secret(value)
		case "transports":
			c.Transports, err = parseTransports(value)
		default:
			return ServerConfig{}, bad(key, "unknown field (want id, host, port, tls_port, realm, secret, previous_secret or transports)")
		}
		if err != nil {
			return ServerConfig{}, bad(key, "%v", err)
		}
	}
	if !seen["id"] {
		return ServerConfig{}, bad("id", "missing")
	}
	if !seen["host"] {
		return ServerConfig{}, bad("host", "missing")
	}
	if !seen["secret"] {
		return ServerConfig{}, bad("secret", "missing")
	}
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		if fe, ok := err.(*FieldError); ok {
			fe.Entry = entry
		}
		return ServerConfig{}, err
	}
	return c, nil
}

// parsePort parses a decimal port number; range checks are left to Validate.
func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", v)
	}
	return n, nil
}

// parseTransports parses "udp|tcp|tls"; validity is checked by Validate.
func parseTransports(v string) ([]Transport, error) {
	if v == "" {
		return nil, fmt.Errorf("must not be empty")
	}
	var ts []Transport
	for p := range strings.SplitSeq(v, "|") {
		ts = append(ts, Transport(strings.ToLower(strings.TrimSpace(p))))
	}
	return ts, nil
}

// LegacyServer builds the single-server configuration of the legacy
// TURN_HOST / TURN_PORT / TURN_SECRET variables: ID "default", transports
// udp and tcp, no TLS, realm "caas.local". A port of 0 means 3478. The
// result is validated; errors are *FieldError values naming the field.
func LegacyServer(host string, port int, secret string) (ServerConfig, error) {
	if port == 0 {
		port = DefaultPort
	}
	c := ServerConfig{
		ID:         LegacyServerID,
		Host:       strings.TrimSpace(host),
		Port:       port,
		Realm:      DefaultRealm,
		Secret:     Secret(secret),
		Transports: []Transport{TransportUDP, TransportTCP},
	}
	if err := c.Validate(); err != nil {
		return ServerConfig{}, err
	}
	return c, nil
}
