package transport

import "errors"

// ErrTooManyConnections means the node holds its maximum of connections.
var ErrTooManyConnections = errors.New("transport: too many connections")

// ErrNotTCP means an upgraded connection is not a TCP socket, which the
// native transport's poller needs.
var ErrNotTCP = errors.New("transport: not a TCP connection")

// errShortFrame means the buffer holds only part of a frame: read more.
var errShortFrame = errors.New("short frame")
