package transport

import "errors"

// ErrSlowConsumer means a connection's outbound queue was full: the client
// does not read fast enough and is disconnected.
var ErrSlowConsumer = errors.New("transport: slow consumer: outbound queue full")

// ErrClosed means the connection is closed.
var ErrClosed = errors.New("transport: connection closed")

// ErrTooManyConnections means the node holds its maximum of connections.
var ErrTooManyConnections = errors.New("transport: too many connections")
