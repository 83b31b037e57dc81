package transport

import "errors"

// ErrTooManyConnections means the node holds its maximum of connections.
var ErrTooManyConnections = errors.New("transport: too many connections")
