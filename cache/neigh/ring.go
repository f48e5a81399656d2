package neigh

import (
	"sync/atomic"

	"ferry/netaddr"
)

// RingSize is the capacity of each core's event ring.
const RingSize = 4096

const (
	evResolve uint8 = iota + 1
	evARP
)

// event is what a core tells the owner. It holds no pointers, so writing
// one into the ring costs no write barrier and keeps the GC out of it.
type event struct {
	kind    uint8
	unicast bool // ARP: the frame was addressed to our MAC (PACKET_HOST)
	hasTHA  bool
	op      uint16
	port    int32
	ip      uint32 // resolve target, or ARP sender IP
	tip     uint32 // ARP target IP
	sha     netaddr.MAC
	tha     netaddr.MAC
}

// ring is a single-producer single-consumer queue: the producer is one core,
// the consumer the owner. Head and tail sit on their own cache lines.
type ring struct {
	_     [64]byte
	head  atomic.Uint64 // next slot the owner reads
	_     [56]byte
	tail  atomic.Uint64 // next slot the core writes
	hcach uint64        // producer's cached head: avoids touching the owner's line on every push
	_     [48]byte
	buf   []event
}

func newRing() *ring { return &ring{buf: make([]event, RingSize)} }

// push never blocks; false means the ring is full and ev was dropped.
func (r *ring) push(ev *event) bool {
	t := r.tail.Load()
	if t-r.hcach >= RingSize {
		r.hcach = r.head.Load()
		if t-r.hcach >= RingSize {
			return false
		}
	}
	r.buf[t&(RingSize-1)] = *ev
	r.tail.Store(t + 1)
	return true
}

// drain hands the owner at most max events.
func (r *ring) drain(max int, fn func(*event)) int {
	h := r.head.Load()
	t := r.tail.Load()
	n := 0
	for h != t && n < max {
		ev := r.buf[h&(RingSize-1)]
		fn(&ev)
		h++
		n++
		r.head.Store(h)
	}
	return n
}

// coreStats are one core's counters; each has a single writer, so plain
// load+store suffices and no core contends with another.
type coreStats struct {
	lookups       atomic.Uint64
	hits          atomic.Uint64
	drops         atomic.Uint64
	unresDiscards atomic.Uint64
	_             [32]byte
}

func inc(c *atomic.Uint64) { c.Store(c.Load() + 1) }
