//go:build !linux

package transport

import "errors"

// sendRing exists on Linux only; elsewhere the flusher writes each
// connection with its own write.
type sendRing struct{}

type ringSend struct {
	fd  int
	buf []byte
	res int32
}

const (
	ringNotSubmitted = -1 << 31
	ringInFlight     = ringNotSubmitted + 1
)

func newSendRing(uint32) (*sendRing, error) { return nil, errors.New("io_uring needs Linux") }
func (r *sendRing) send([]ringSend) error   { return errors.New("io_uring needs Linux") }
func (r *sendRing) close()                  {}
func ringResult(res int32) (int, error)     { return int(max(res, 0)), nil }
