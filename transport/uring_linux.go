//go:build linux

package transport

import (
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendRing is a small io_uring used only to submit the sends of a flush
// chunk in one system call instead of one write(2) each. On loopback a
// small write costs ~11–12 µs on this kind of VM, and the same send
// through a ring of 1,000 ~9–10 µs: the ring enters and leaves the kernel
// once per chunk.
//
// Every send carries MSG_DONTWAIT, so the kernel never parks one on a full
// socket: it completes at once with what the socket took, or -EAGAIN, and
// all completions are in the ring when io_uring_enter returns. The buffers
// therefore need to live only for the call. Only the flusher uses a ring.
type sendRing struct {
	fd int

	sqRing, cqRing, sqeMem []byte // mappings, for Munmap

	sqTail  *uint32
	sqMask  uint32
	sqArray []uint32
	sqes    []ringSQE

	cqHead *uint32
	cqTail *uint32
	cqMask uint32
	cqes   []ringCQE
}

// Constants of the io_uring ABI (linux/io_uring.h).
const (
	ringOpSend         = 26 // IORING_OP_SEND
	ringEnterGetEvents = 1  // IORING_ENTER_GETEVENTS
	ringFeatSingleMmap = 1  // IORING_FEAT_SINGLE_MMAP
	ringOffSQRing      = 0
	ringOffCQRing      = 0x8000000
	ringOffSQEs        = 0x10000000
)

// ringParams is struct io_uring_params.
type ringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  ringSQOffsets
	cqOff                                                                  ringCQOffsets
}

// ringSQOffsets is struct io_sqring_offsets.
type ringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

// ringCQOffsets is struct io_cqring_offsets.
type ringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// ringSQE is struct io_uring_sqe (64 bytes).
type ringSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	msgFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	fileIndex   uint32
	addr3       uint64
	_           uint64
}

// ringCQE is struct io_uring_cqe (16 bytes).
type ringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// The layouts above must be the kernel's; the build fails if one is not
// the size linux/io_uring.h gives it.
var (
	_ [120]byte = [unsafe.Sizeof(ringParams{})]byte{}
	_ [64]byte  = [unsafe.Sizeof(ringSQE{})]byte{}
	_ [16]byte  = [unsafe.Sizeof(ringCQE{})]byte{}
)

// ringSend is one send of a chunk; res is its outcome: bytes sent, or a
// negative errno.
type ringSend struct {
	fd  int
	buf []byte
	res int32
}

// newSendRing sets up a ring for chunks of up to entries sends.
func newSendRing(entries uint32) (*sendRing, error) {
	var p ringParams
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &sendRing{fd: int(fd)}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(ringCQE{})))
	single := p.features&ringFeatSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	if r.sqRing, err = unix.Mmap(r.fd, ringOffSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("mmap sq ring: %w", err)
	}
	r.cqRing = r.sqRing
	if !single {
		if r.cqRing, err = unix.Mmap(r.fd, ringOffCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
			return nil, fmt.Errorf("mmap cq ring: %w", err)
		}
	}
	sqeSize := int(p.sqEntries) * int(unsafe.Sizeof(ringSQE{}))
	if r.sqeMem, err = unix.Mmap(r.fd, ringOffSQEs, sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("mmap sqes: %w", err)
	}
	sq, cq := unsafe.Pointer(&r.sqRing[0]), unsafe.Pointer(&r.cqRing[0])
	r.sqTail = (*uint32)(unsafe.Add(sq, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(sq, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(sq, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*ringSQE)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(cq, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(cq, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(cq, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*ringCQE)(unsafe.Add(cq, p.cqOff.cqes)), p.cqEntries)
	ok = true
	return r, nil
}

// Results of a send that has none from the kernel (yet).
const (
	ringNotSubmitted = math.MinInt32     // the kernel never took it
	ringInFlight     = math.MinInt32 + 1 // taken, not completed
)

// send submits sends (at most capacity) and fills each one's res with
// the bytes sent or a negative errno. On an error it returns, sends still
// marked ringNotSubmitted never reached the kernel, and those marked
// ringInFlight may or may not have.
func (r *sendRing) send(sends []ringSend) error {
	n := uint32(len(sends))
	if n == 0 {
		return nil
	}
	tail := *r.sqTail // only this goroutine moves the tail
	for i := range sends {
		s := &sends[i]
		idx := (tail + uint32(i)) & r.sqMask
		r.sqes[idx] = ringSQE{
			opcode:   ringOpSend,
			fd:       int32(s.fd),
			addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(s.buf)))),
			len:      uint32(len(s.buf)),
			msgFlags: unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL,
			userData: uint64(i),
		}
		r.sqArray[idx] = idx
		s.res = ringNotSubmitted
	}
	atomic.StoreUint32(r.sqTail, tail+n)
	// RawSyscall: the P stays with the flusher for the call, as it does
	// for a short write(2), instead of sysmon handing it to another
	// thread in the middle of most chunks. The call is short, since no
	// send waits: passChunk of them, about a millisecond on loopback.
	var submitted, done uint32
	for done < n {
		ret, _, errno := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(n-submitted), uintptr(n-done), ringEnterGetEvents, 0, 0)
		switch {
		case errno == unix.EINTR:
		case errno != 0:
			return fmt.Errorf("io_uring_enter: %w", errno)
		default:
			for i := submitted; i < min(submitted+uint32(ret), n); i++ {
				sends[i].res = ringInFlight
			}
			submitted = min(submitted+uint32(ret), n)
		}
		done += r.reap(sends)
	}
	// The kernel is done with the buffers once every send has completed.
	runtime.KeepAlive(sends)
	return nil
}

// ringResult is a completed send as write(2) would have said it: a full
// socket is 0 bytes, not an error.
func ringResult(res int32) (int, error) {
	switch {
	case res >= 0:
		return int(res), nil
	case res == -int32(unix.EAGAIN):
		return 0, nil
	default:
		return 0, unix.Errno(-res)
	}
}

// reap moves the completions in the ring to their sends.
func (r *sendRing) reap(sends []ringSend) uint32 {
	head, tail := *r.cqHead, atomic.LoadUint32(r.cqTail)
	got := tail - head
	for ; head != tail; head++ {
		cqe := &r.cqes[head&r.cqMask]
		if i := cqe.userData; i < uint64(len(sends)) {
			sends[i].res = cqe.res
		}
	}
	atomic.StoreUint32(r.cqHead, head)
	return got
}

// close unmaps the ring and closes its descriptor.
func (r *sendRing) close() {
	if r.sqeMem != nil {
		_ = unix.Munmap(r.sqeMem)
	}
	if r.cqRing != nil && (r.sqRing == nil || &r.cqRing[0] != &r.sqRing[0]) {
		_ = unix.Munmap(r.cqRing)
	}
	if r.sqRing != nil {
		_ = unix.Munmap(r.sqRing)
	}
	_ = unix.Close(r.fd)
}
