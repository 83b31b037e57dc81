package transport

import (
	"errors"
	"fmt"

	"github.com/caasd/caasd/internal/wire"
)

// DecodeNative parses a native client frame {"event":…,"data":…}. The
// returned data is a copy the caller owns.
func DecodeNative(frame []byte) (name string, data []byte, err error) {
	var in wire.Inbound
	if err := wire.DecodeInbound(frame, &in); err != nil {
		return "", nil, fmt.Errorf("malformed frame: %w", err)
	}
	if in.Event == "" {
		return "", nil, errors.New("malformed frame: \"event\" is required")
	}
	if len(in.Event) > 64 {
		return "", nil, errors.New("malformed frame: event name too long")
	}
	return in.Event, in.Data, nil
}
