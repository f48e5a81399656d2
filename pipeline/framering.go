package pipeline

import "sync/atomic"

// FrameRing is a single-producer, single-consumer queue of whole frames
// between a pipeline core and a goroutine of the control plane, in either
// direction. Its slots are allocated once; neither side blocks or
// allocates, and each side writes only its own index.
type FrameRing struct {
	head atomic.Uint32 // next slot the consumer reads
	_    [60]byte
	tail atomic.Uint32 // next slot the producer writes
	_    [60]byte
	mask uint32
	lens []uint32
	bufs [][]byte

	// Written by the producer only.
	frames  atomic.Uint64 // queued
	full    atomic.Uint64 // dropped: the ring was full
	limited atomic.Uint64 // dropped: over the rate limit
	long    atomic.Uint64 // dropped: longer than a slot
}

// NewFrameRing makes a ring of slots (rounded up to a power of two)
// frames of up to frameLen bytes each.
func NewFrameRing(slots, frameLen int) *FrameRing {
	n := 1
	for n < slots {
		n <<= 1
	}
	r := &FrameRing{mask: uint32(n - 1), lens: make([]uint32, n), bufs: make([][]byte, n)}
	back := make([]byte, n*frameLen)
	for i := range r.bufs {
		r.bufs[i] = back[i*frameLen : (i+1)*frameLen : (i+1)*frameLen]
	}
	return r
}

// Push copies b into the ring (producer); false, counted, when it is full
// or b does not fit a slot.
func (r *FrameRing) Push(b []byte) bool {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		r.full.Add(1)
		return false
	}
	s := r.bufs[t&r.mask]
	if len(b) > len(s) {
		r.long.Add(1)
		return false
	}
	r.lens[t&r.mask] = uint32(copy(s, b))
	r.tail.Store(t + 1)
	r.frames.Add(1)
	return true
}

// Front is the oldest frame (consumer), valid until Pop; nil when empty.
func (r *FrameRing) Front() []byte {
	h := r.head.Load()
	if h == r.tail.Load() {
		return nil
	}
	return r.bufs[h&r.mask][:r.lens[h&r.mask]]
}

// Pop releases the frame Front returned (consumer).
func (r *FrameRing) Pop() { r.head.Store(r.head.Load() + 1) }

// RingStats are a ring's producer-side totals.
type RingStats struct {
	Frames  uint64 `json:"frames"`
	Full    uint64 `json:"dropped_full"`
	Limited uint64 `json:"dropped_rate"`
	TooLong uint64 `json:"dropped_too_long"`
}

// Stats reads the producer's totals.
func (r *FrameRing) Stats() RingStats {
	return RingStats{r.frames.Load(), r.full.Load(), r.limited.Load(), r.long.Load()}
}

func (s *RingStats) add(o RingStats) {
	s.Frames += o.Frames
	s.Full += o.Full
	s.Limited += o.Limited
	s.TooLong += o.TooLong
}
