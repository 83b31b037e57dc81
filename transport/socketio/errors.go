package socketio

import "errors"

// Errors of the Engine.IO and Socket.IO codecs and of the server. Errors
// returned by this package wrap one of them.
var (
	// ErrMalformedPacket means a packet or payload does not parse.
	ErrMalformedPacket = errors.New("socketio: malformed packet")
	// ErrBinaryNotSupported means a binary packet or attachment was sent.
	ErrBinaryNotSupported = errors.New("socketio: binary packets are not supported")
	// ErrPayloadTooLarge means a request body exceeds MaxPayloadBytes.
	ErrPayloadTooLarge = errors.New("socketio: payload too large")
	// ErrUnknownSession means no session has the request's sid on this node.
	ErrUnknownSession = errors.New("socketio: session ID unknown")
	// ErrUnknownTransport means the transport query parameter is not
	// polling or websocket.
	ErrUnknownTransport = errors.New("socketio: transport unknown")
	// ErrUnsupportedVersion means the EIO query parameter is not 4.
	ErrUnsupportedVersion = errors.New("socketio: unsupported protocol version")
	// ErrBadRequest means a request that does not fit the session's state.
	ErrBadRequest = errors.New("socketio: bad request")
	// ErrOverlap means a second GET (or POST) arrived while one was pending.
	ErrOverlap = errors.New("socketio: overlapping requests for one session")
	// ErrTooManySessions means the node holds MaxSessions sessions.
	ErrTooManySessions = errors.New("socketio: too many sessions")
	// ErrServerClosed means the server is shutting down.
	ErrServerClosed = errors.New("socketio: server closed")
)
