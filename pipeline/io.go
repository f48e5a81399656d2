package pipeline

import "unsafe"

// MaxPorts and the list sizes are the data plane shim's (shim.h); dpdk/layout.go
// fails to compile when they differ, and checks RxPkt field by field.
const (
	MaxPorts  = 16
	BurstSize = 32  // spare buffers refilled at a time
	RxMax     = 512 // packets received in a pass, over all ports
	TxMax     = 512 // packets sent in a pass, per port: all of a pass may leave by one
	FreeMax   = 1024
)

// IO is what the data plane hands a pipeline: the received pass (RxN
// packets in Rx, which the receive stage completes and reorders in place),
// per-port transmit lists and the list of buffers to free. The slices are
// fixed at set-up (over C memory in production, Go memory in tests); only
// the counts change per pass. Ref values are opaque buffer handles.
type IO struct {
	RxN *uint32
	Rx  []RxPkt // RxMax

	TxN []uint16 // per port
	// Per port, TxMax each: handles only, never dereferenced, so that
	// storing one is not a pointer store (which checks for the collector's
	// write barrier in the forwarding loop).
	TxRef [][]uintptr
	TxLen [][]uint16

	FreeN   *uint32
	FreeRef []unsafe.Pointer

	// Spare buffers for packets the pipeline creates (ARP requests, control
	// frames). Refill tops them up to n; it is called at most once a burst.
	AllocN    *uint32
	AllocRef  []unsafe.Pointer
	AllocData []unsafe.Pointer
	AllocCap  []uint16
	Refill    func(n int)

	// Parses: the data plane runs ParseUsual's checks itself as it
	// receives, while each frame is still in the cache, and fills the
	// received records' Usual and header fields; without it the receive
	// stage does. PortMAC is where either reads each port's MAC for them
	// (as MACWord): the pipeline writes it when its ports change, and
	// makes its own if the IO has none.
	Parses  bool
	PortMAC *[MaxPorts]uint64
}

// bytes views a buffer's memory from its data start.
func bytesAt(p unsafe.Pointer, n int) []byte {
	return unsafe.Slice((*byte)(p), n)
}

// free hands a buffer back; the data plane frees the list after the burst.
func (io *IO) free(ref unsafe.Pointer) bool {
	n := *io.FreeN
	if int(n) >= len(io.FreeRef) {
		return false
	}
	io.FreeRef[n] = ref
	*io.FreeN = n + 1
	return true
}

// send queues a buffer of length l on port; false when the list is full.
// It is the one append to a tx list but for two loops that keep the list's
// count in a register across many packets and so write it out once:
// fwdTx (a run of forwarded packets) and neighOutput (the packets of one
// resolved neighbour).
func (io *IO) send(port int, ref unsafe.Pointer, l int) bool {
	n := io.TxN[port]
	if int(n) >= len(io.TxRef[port]) {
		return false
	}
	io.TxRef[port][n] = uintptr(ref)
	io.TxLen[port][n] = uint16(l)
	io.TxN[port] = n + 1
	return true
}

// alloc takes a spare buffer; ok is false when none can be had.
func (io *IO) alloc() (ref unsafe.Pointer, buf []byte, ok bool) {
	if *io.AllocN == 0 && io.Refill != nil {
		io.Refill(BurstSize)
	}
	n := *io.AllocN
	if n == 0 {
		return nil, nil, false
	}
	n--
	*io.AllocN = n
	return io.AllocRef[n], bytesAt(io.AllocData[n], int(io.AllocCap[n])), true
}
