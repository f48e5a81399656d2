// Package pktgen is ferry-pktgen's packet loop: it sends frames stamped
// from templates and counts what comes back, or reflects one port's frames
// to another, in C on a pinned EAL thread. Ports and buffer pools come from
// package dpdk.
package pktgen

/*
#cgo pkg-config: libdpdk
#cgo CFLAGS: -O3 -Wno-deprecated-declarations
#include <stdlib.h>
#include "gen.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"ferry/dpdk"
)

// Mode says what a Generator's loop does.
type Mode int

const (
	// Send stamps frames from the templates onto the tx port and counts
	// what comes back on the rx port.
	Send Mode = C.FY_GEN_SEND
	// Reflect forwards the rx port to the tx port unchanged.
	Reflect Mode = C.FY_GEN_REFLECT
)

// Limits of the generator's templates.
const (
	HeaderLen = C.FY_GEN_HDR
	MaxBurst  = C.FY_GEN_MAX_BURST
	MaxSizes  = C.FY_GEN_MAX_SIZES
	MaxSeq    = C.FY_GEN_MAX_SEQ
)

// Config sets up a Generator.
type Config struct {
	Mode  Mode
	Tx    dpdk.Port // Reflect: the port frames leave by
	Rx    dpdk.Port // Reflect: the port frames arrive on
	Queue int
	Pool  *dpdk.Pool // Send only
	Burst int
	// Send: how long to wait, in microseconds, after finding the tx
	// ring full before trying again (0: retry at once).
	BackoffMicros int
	// One Ethernet+IPv4+UDP header (HeaderLen bytes, destination and
	// checksum zero) and frame length per size class, and the order in
	// which the classes are sent.
	Headers [][]byte
	Lens    []int
	Seq     []int
}

// Generator is the benchmark's packet loop: its hot path is C, run by one
// cgo call on a pinned thread; Go only prepares templates and reads counters.
type Generator struct {
	g       *C.struct_fy_gen
	dst     unsafe.Pointer
	running bool
	done    chan struct{}
}

// Counters are the loop's totals since the Generator was made.
type Counters struct {
	TxPkts, TxBytes, TxFull, AllocFail uint64
	RxPkts, RxBytes, RxOther, RxBack   uint64
	Loops, IdleLoops, TSC              uint64
}

// New checks c and copies the templates into C memory.
func New(c Config) (*Generator, error) {
	if c.Burst <= 0 || c.Burst > MaxBurst {
		return nil, fmt.Errorf("generator: burst %d out of range 1-%d", c.Burst, MaxBurst)
	}
	if c.Mode == Send {
		if c.Pool == nil {
			return nil, errors.New("generator: no mbuf pool")
		}
		if len(c.Headers) == 0 || len(c.Headers) > MaxSizes || len(c.Headers) != len(c.Lens) {
			return nil, fmt.Errorf("generator: %d headers for %d lengths (1-%d)", len(c.Headers), len(c.Lens), MaxSizes)
		}
		if len(c.Seq) == 0 || len(c.Seq) > MaxSeq {
			return nil, fmt.Errorf("generator: size sequence of %d (1-%d)", len(c.Seq), MaxSeq)
		}
	}
	g := C.fy_gen_new()
	if g == nil {
		return nil, errors.New("generator: cannot allocate its state")
	}
	g.mode = C.uint16_t(c.Mode)
	g.tx_port = C.uint16_t(c.Tx.ID)
	g.rx_port = C.uint16_t(c.Rx.ID)
	g.queue = C.uint16_t(c.Queue)
	g.burst = C.uint16_t(c.Burst)
	g.backoff_us = C.uint16_t(c.BackoffMicros)
	if c.Mode == Send {
		g.mp = (*C.struct_rte_mempool)(c.Pool.Mempool())
		for k, h := range c.Headers {
			if len(h) != HeaderLen {
				C.fy_gen_free(g)
				return nil, fmt.Errorf("generator: header %d is %d bytes, want %d", k, len(h), HeaderLen)
			}
			hdr := unsafe.Slice((*byte)(unsafe.Pointer(&g.hdr[k][0])), len(g.hdr[k]))
			copy(hdr, h)
			g.frame_len[k] = C.uint16_t(c.Lens[k])
		}
		g.nsizes = C.uint16_t(len(c.Headers))
		for i, k := range c.Seq {
			g.seq[i] = C.uint8_t(k)
		}
		g.nseq = C.uint16_t(len(c.Seq))
		if C.fy_gen_prepare(g) != 0 {
			C.fy_gen_free(g)
			return nil, errors.New("generator: templates are not IPv4 headers of a sending size")
		}
	}
	return &Generator{g: g}, nil
}

// SetDestinations replaces the destination template (host-order IPv4
// addresses, used in turn). Only while the loop is stopped.
func (g *Generator) SetDestinations(dst []uint32) error {
	if g.running {
		return errors.New("generator: destinations changed while running")
	}
	if len(dst) == 0 {
		return errors.New("generator: no destinations")
	}
	p := C.malloc(C.size_t(4 * len(dst)))
	if p == nil {
		return fmt.Errorf("generator: cannot allocate %d destinations", len(dst))
	}
	view := unsafe.Slice((*byte)(p), 4*len(dst))
	for i, a := range dst {
		binary.BigEndian.PutUint32(view[4*i:], a)
	}
	if g.dst != nil {
		C.free(g.dst)
	}
	g.dst = p
	g.g.dst = (*C.uint32_t)(p)
	g.g.ndst = C.uint32_t(len(dst))
	g.g.next_dst = 0
	g.g.next_seq = 0
	return nil
}

// Start runs the loop on its own OS thread pinned to cpu and returns once
// the thread is pinned and registered with the EAL.
func (g *Generator) Start(cpu int) error {
	if g.running {
		return errors.New("generator: already running")
	}
	if Mode(g.g.mode) == Send && g.g.ndst == 0 {
		return errors.New("generator: no destinations set")
	}
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&g.g.stop)), 0)
	started := make(chan error, 1)
	g.done = make(chan struct{})
	go func() {
		defer close(g.done)
		// The thread stays locked: it ends with the goroutine, taking its
		// affinity and EAL registration with it.
		runtime.LockOSThread()
		if ret := C.fy_gen_thread_start(C.int(cpu)); ret != 0 {
			started <- &dpdk.Error{Op: fmt.Sprintf("pin generator thread to cpu %d and register it", cpu), Code: int(ret)}
			return
		}
		started <- nil
		C.fy_gen_run(g.g)
		C.fy_gen_thread_end()
	}()
	if err := <-started; err != nil {
		<-g.done
		return err
	}
	g.running = true
	return nil
}

// Stop ends the loop and waits for it.
func (g *Generator) Stop() {
	if !g.running {
		return
	}
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&g.g.stop)), 1)
	<-g.done
	g.running = false
}

// Counters reads the loop's totals; safe while it runs.
func (g *Generator) Counters() Counters {
	c := &g.g.c
	ld := func(p *C.uint64_t) uint64 { return atomic.LoadUint64((*uint64)(unsafe.Pointer(p))) }
	return Counters{
		TxPkts: ld(&c.tx_pkts), TxBytes: ld(&c.tx_bytes), TxFull: ld(&c.tx_full), AllocFail: ld(&c.alloc_fail),
		RxPkts: ld(&c.rx_pkts), RxBytes: ld(&c.rx_bytes), RxOther: ld(&c.rx_other), RxBack: ld(&c.rx_back),
		Loops: ld(&c.loops), IdleLoops: ld(&c.idle_loops), TSC: ld(&c.tsc),
	}
}

// ThreadID is the OS thread id of the running loop (0 before it starts).
func (g *Generator) ThreadID() int {
	return int(atomic.LoadInt32((*int32)(unsafe.Pointer(&g.g.tid))))
}

// Free releases the Generator's C memory; it must be stopped.
func (g *Generator) Free() {
	g.Stop()
	if g.dst != nil {
		C.free(g.dst)
		g.dst = nil
	}
	if g.g != nil {
		C.fy_gen_free(g.g)
		g.g = nil
	}
}

// TSCHz is the time stamp counter's frequency as the EAL measured it.
func TSCHz() uint64 { return uint64(C.fy_gen_tsc_hz()) }
