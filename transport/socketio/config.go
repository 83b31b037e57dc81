package socketio

import "time"

// Config configures the Socket.IO endpoint. Zero fields take the defaults
// of DefaultConfig.
type Config struct {
	// NodeID prefixes connection ids.
	NodeID string
	// PingInterval is how often the server pings each session.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong; a session
	// that does not answer in time is closed.
	PingTimeout time.Duration
	// ConnectTimeout closes a session whose client has not completed the
	// Socket.IO CONNECT by then.
	ConnectTimeout time.Duration
	// UpgradeTimeout abandons a WebSocket probe not completed by then.
	UpgradeTimeout time.Duration
	// WriteTimeout bounds one WebSocket write and one long-poll response.
	WriteTimeout time.Duration
	// MaxPayloadBytes bounds one HTTP POST body and one WebSocket message;
	// it is announced to clients as maxPayload.
	MaxPayloadBytes int
	// MaxFrameBytes is the largest Socket.IO packet handled; larger ones
	// get an "error" event with code too_large.
	MaxFrameBytes int
	// OutboundQueueLen bounds the packets waiting for one client; a client
	// that lets more wait is closed as a slow consumer.
	OutboundQueueLen int
	// MaxSessions bounds the Engine.IO sessions of this node.
	MaxSessions int
}

// DefaultConfig returns the defaults: the Engine.IO reference values for
// the heartbeat (25 s interval, 20 s timeout) and a 1 MB maxPayload.
func DefaultConfig() Config {
	return Config{
		NodeID:           "caasd",
		PingInterval:     25 * time.Second,
		PingTimeout:      20 * time.Second,
		ConnectTimeout:   45 * time.Second,
		UpgradeTimeout:   10 * time.Second,
		WriteTimeout:     10 * time.Second,
		MaxPayloadBytes:  1_000_000,
		MaxFrameBytes:    64 * 1024,
		OutboundQueueLen: 1024,
		MaxSessions:      200_000,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.NodeID == "" {
		c.NodeID = d.NodeID
	}
	if c.PingInterval <= 0 {
		c.PingInterval = d.PingInterval
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = d.PingTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = d.UpgradeTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.MaxPayloadBytes <= 0 {
		c.MaxPayloadBytes = d.MaxPayloadBytes
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.MaxFrameBytes > c.MaxPayloadBytes {
		c.MaxFrameBytes = c.MaxPayloadBytes
	}
	if c.OutboundQueueLen <= 0 {
		c.OutboundQueueLen = d.OutboundQueueLen
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = d.MaxSessions
	}
	return c
}

// tick is the sweep period: fine enough that pings go out and timeouts
// fire within a tenth of their duration (and within a second).
func (c Config) tick() time.Duration {
	t := min(c.PingInterval, c.PingTimeout, c.ConnectTimeout, c.UpgradeTimeout) / 10
	return max(5*time.Millisecond, min(t, time.Second))
}
