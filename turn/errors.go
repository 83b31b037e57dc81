package turn

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned when a server ID is not in the registry.
var ErrNotFound = errors.New("turn: server not found")

// ErrExists is returned when a server ID is already in the registry or
// appears twice in a configuration.
var ErrExists = errors.New("turn: server already exists")

// ErrTooManyServers is returned when adding a server would exceed the
// registry's MaxServers bound.
var ErrTooManyServers = errors.New("turn: too many servers")

// ErrInvalidConfig marks every configuration error; FieldError wraps it.
var ErrInvalidConfig = errors.New("turn: invalid configuration")

// FieldError reports a bad field in a server configuration or in the
// TURN_SERVERS list. It never carries a secret value. It wraps
// ErrInvalidConfig, so errors.Is(err, ErrInvalidConfig) holds.
type FieldError struct {
	// Entry is the 1-based position of the server in a parsed list, or 0
	// when the error does not come from a list.
	Entry int
	// ServerID is the server's ID when it is known.
	ServerID string
	// Field is the name of the offending field as written in the list
	// form (for example "port", "tls_port", "secret", "transports").
	Field string
	// Reason says what is wrong, without secret values.
	Reason string
	// Err is an additional sentinel the error matches (for example
	// ErrExists for a duplicate ID), or nil.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string {
	where := "turn: server"
	if e.Entry > 0 {
		where = fmt.Sprintf("%s #%d", where, e.Entry)
	}
	if e.ServerID != "" {
		where = fmt.Sprintf("%s %q", where, e.ServerID)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", where, e.Reason)
	}
	return fmt.Sprintf("%s: field %q: %s", where, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidConfig and, when set, Err.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidConfig, e.Err}
	}
	return []error{ErrInvalidConfig}
}
