// Package persistence owns caasd's durable paths: the Kafka producer and the
// persister that writes chat messages to MongoDB, delivery confirmations,
// the MongoDB repositories, and the Redis state (sequence numbers, message
// status, caches).
package persistence

import "errors"

// ErrNotFound means the document does not exist (in the caller's tenant).
var ErrNotFound = errors.New("persistence: not found")

// ErrConflict means a document with that id already exists.
var ErrConflict = errors.New("persistence: already exists")

// ErrProducerFull means the producer's input queue is full: Kafka is slow
// or down and the caller should refuse new work.
var ErrProducerFull = errors.New("persistence: producer queue full")

// ErrProducerClosed means the producer is shutting down.
var ErrProducerClosed = errors.New("persistence: producer closed")

// ErrTooManyPending means too many messages await confirmation on this node.
var ErrTooManyPending = errors.New("persistence: too many messages awaiting confirmation")

var errIncompleteRecord = errors.New("message_id, tenant_id, conversation_id and seq are required")

// ErrInvalidRecording means recording data (a quality report, storage
// information, a filter or a cursor) is out of range or malformed.
var ErrInvalidRecording = errors.New("persistence: invalid recording data")

// ErrSeqBusy means the sequencer batcher's queue is full: Redis is not
// keeping up and the caller should refuse the messages.
var ErrSeqBusy = errors.New("persistence: sequencer queue full")

// ErrSeqClosed means the sequencer batcher has stopped.
var ErrSeqClosed = errors.New("persistence: sequencer stopped")

// ErrFenced means this activation's lease is gone: another activation of
// the room holds a newer epoch, and this one must stop at once.
var ErrFenced = errors.New("persistence: lease lost (fenced)")

// ErrLeaseHeld means another live node holds the room's lease.
var ErrLeaseHeld = errors.New("persistence: lease held by another node")

// ErrRestoreLost means a seq restore lost its hold while it ran: Redis
// lost its data, or the hold expired and another node took over.
var ErrRestoreLost = errors.New("persistence: seq restore interrupted")
