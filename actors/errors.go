// Package actors holds caasd's actor kinds (protoactor-go): the connection
// actor, which turns a client's events into requests; the room actor, which
// owns a conversation's online members and sequence and drives its
// messages to Kafka and out to members; and the engine that places them.
package actors

import (
	"errors"

	"github.com/caasd/caasd/internal/wire"
)

// ErrRoom carries a room's refusal (a wire error) to the admin API.
type ErrRoom struct{ Wire wire.Error }

// Error gives the refusal's code and message.
func (e *ErrRoom) Error() string { return e.Wire.Error() }

// WireError returns the refusal's wire error.
func (e *ErrRoom) WireError() wire.Error { return e.Wire }

// errEventsQueued answers events beyond maxQueuedEvents of one connection.
var errEventsQueued = errors.New("too many events waiting on this connection; slow down")

// errRoomDraining answers, on a node that is stopping, what would need a
// room it has not loaded.
var errRoomDraining = wire.Errorf(wire.CodeUnavailable, "server shutting down; send again once reconnected")
