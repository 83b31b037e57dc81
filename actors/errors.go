// Package actors holds caasd's actor kinds (protoactor-go): the connection
// actor, which turns a client's events into requests; the room actor, which
// owns a conversation's online members and sequence and drives its
// messages to Kafka and out to members; and the engine that places them.
package actors

import "errors"

// ErrStopped means the engine is shutting down.
var ErrStopped = errors.New("actors: engine stopped")
