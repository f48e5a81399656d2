package dpdk

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"ferry/pipeline"
)

// Worker is one pipeline core: an EAL lcore's thread, on the CPUs the EAL
// pinned it to, polling one queue on every port.
type Worker struct {
	Lcore   int
	Queue   int
	ws      *C.struct_fy_ws
	pool    *Pool
	IO      pipeline.IO
	proc    Processor
	stop    atomic.Bool
	started chan struct{}
	done    chan struct{}
	running bool
}

// RxPassMax is how many packets one pass receives at most, over all ports.
const RxPassMax = C.FY_RX_MAX

// NewWorker prepares the C workspace for queue q on ports, to run on
// lcore, and wires the pipeline's views over it. Each pass takes up to
// rxBurst packets from every port, fewer where the ports together would
// exceed RxPassMax (see RxBurst).
func NewWorker(lcore, q int, ports []Port, pool *Pool, rxBurst int) (*Worker, error) {
	if len(ports) > MaxPorts || len(ports) == 0 {
		return nil, fmt.Errorf("worker: %d ports, 1 to %d", len(ports), MaxPorts)
	}
	if rxBurst < 1 {
		return nil, fmt.Errorf("worker: receive burst %d", rxBurst)
	}
	ws := C.fy_ws_new()
	if ws == nil {
		return nil, fmt.Errorf("worker on lcore %d: cannot allocate workspace", lcore)
	}
	ws.nports = C.uint16_t(len(ports))
	ws.queue = C.uint16_t(q)
	ws.rx_burst = C.uint16_t(RxBurst(rxBurst, len(ports)))
	for i, p := range ports {
		ws.port_ids[i] = C.uint16_t(p.ID)
	}
	w := &Worker{Lcore: lcore, Queue: q, ws: ws, pool: pool, started: make(chan struct{}), done: make(chan struct{})}
	io := &w.IO
	io.RxN = (*uint32)(unsafe.Pointer(&ws.nrx))
	io.Rx = unsafe.Slice((*pipeline.RxPkt)(unsafe.Pointer(&ws.rx[0])), C.FY_RX_MAX)
	io.TxN = unsafe.Slice((*uint16)(unsafe.Pointer(&ws.tx_n[0])), len(ports))
	io.TxRef = make([][]uintptr, len(ports))
	io.TxLen = make([][]uint16, len(ports))
	for i := range ports {
		io.TxRef[i] = unsafe.Slice((*uintptr)(unsafe.Pointer(&ws.tx_ref[i][0])), C.FY_TX_MAX)
		io.TxLen[i] = unsafe.Slice((*uint16)(unsafe.Pointer(&ws.tx_len[i][0])), C.FY_TX_MAX)
	}
	io.FreeN = (*uint32)(unsafe.Pointer(&ws.nfree))
	io.FreeRef = unsafe.Slice((*unsafe.Pointer)(unsafe.Pointer(&ws.free_ref[0])), C.FY_FREE_MAX)
	io.AllocN = (*uint32)(unsafe.Pointer(&ws.nalloc))
	io.AllocRef = unsafe.Slice((*unsafe.Pointer)(unsafe.Pointer(&ws.alloc_ref[0])), C.FY_BURST)
	io.AllocData = unsafe.Slice((*unsafe.Pointer)(unsafe.Pointer(&ws.alloc_data[0])), C.FY_BURST)
	io.AllocCap = unsafe.Slice((*uint16)(unsafe.Pointer(&ws.alloc_cap[0])), C.FY_BURST)
	io.Refill = func(n int) { C.fy_alloc(ws, pool.p, C.uint32_t(n)) }
	io.Parses = true
	io.PortMAC = (*[pipeline.MaxPorts]uint64)(unsafe.Pointer(&ws.port_mac[0]))
	return w, nil
}

// RxBurst is the receive burst per port a pass of nports ports uses for a
// wanted one: what the pass's lists hold, shared out evenly.
func RxBurst(want, nports int) int {
	return max(1, min(want, RxPassMax/max(nports, 1)))
}

// Processor is the per-core packet path the worker drives.
type Processor interface {
	Process()
	Idle()
	Drain()
}

// Start runs the loop on the worker's lcore and returns once it runs
// there. The processor is called once per burst (an interface call per
// burst, not per packet).
func (w *Worker) Start(p Processor) error {
	if w.running {
		return fmt.Errorf("worker on lcore %d already runs", w.Lcore)
	}
	if _, err := PipelineLcore(w.Lcore); err != nil {
		return err
	}
	w.proc = p
	h := register(w)
	if ret := C.fy_lcore_launch(C.unsigned(w.Lcore), C.uintptr_t(h)); ret != 0 {
		unregister(h)
		return errorf(ret, "launch pipeline on lcore %d", w.Lcore)
	}
	w.running = true
	<-w.started
	return nil
}

// run is the lcore's side: the loop, then what the pipeline still holds
// is sent or freed before the lcore goes back to the EAL.
func (w *Worker) run() {
	close(w.started)
	w.loop(w.proc)
	w.proc.Drain()
	C.fy_tx(w.ws)
	close(w.done)
}

// Idle polls back off in steps, so a loaded core never sleeps and an idle
// one leaves the CPU to others.
const (
	spinPolls  = 512
	shortNap   = 20 * time.Microsecond
	longIdle   = 1 << 16
	longNap    = 200 * time.Microsecond
	idleTickNs = int64(time.Millisecond)
)

func (w *Worker) loop(p Processor) {
	ws := w.ws
	idle := 0
	var lastTick int64
	for !w.stop.Load() {
		// One cgo call per burst: it sends what the last pass queued,
		// then receives.
		if C.fy_txrx(ws) > 0 {
			p.Process()
			idle = 0
			continue
		}
		idle++
		if idle < spinPolls {
			// Timers (resolved neighbours, control frames) still need a
			// pass now and then while spinning; the next poll sends.
			if idle&63 == 0 {
				p.Idle()
			}
			continue
		}
		now := time.Now().UnixNano()
		if now-lastTick >= idleTickNs || idle < spinPolls+8 {
			p.Idle()
			lastTick = now
		}
		// The nap is C's, not time.Sleep: a goroutine that parks gives
		// up its P, and this one, locked to the lcore's thread, would
		// take it back through two thread wake-ups on the control CPUs
		// at every nap, thousands a second.
		nap := shortNap
		if idle >= longIdle {
			nap = longNap
		}
		C.fy_tx_nap(ws, C.uint32_t(nap))
	}
}

// Stop ends the loop and waits until the lcore is back with the EAL.
func (w *Worker) Stop() error {
	if !w.running {
		return nil
	}
	w.stop.Store(true)
	<-w.done
	w.running = false
	if ret := C.fy_lcore_wait(C.unsigned(w.Lcore)); ret != 0 {
		return fmt.Errorf("lcore %d: pipeline returned %d", w.Lcore, int(ret))
	}
	return nil
}

// PortCounters are the shim's totals for this worker's queue of port i:
// packets received and sent, sent ones the queue had no room for, and
// received frames dropped because they came in chained buffers.
func (w *Worker) PortCounters(i int) (rx, tx, txFull, rxSegs uint64) {
	ws := w.ws
	return atomicLoad64(&ws.rx_pkts[i]), atomicLoad64(&ws.tx_pkts[i]), atomicLoad64(&ws.tx_full[i]), atomicLoad64(&ws.rx_segs[i])
}

func atomicLoad64(p *C.uint64_t) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(p)))
}

// Free releases the workspace once the worker has stopped.
func (w *Worker) Free() {
	if w.ws != nil {
		if n := int(w.ws.nalloc); n > 0 {
			C.fy_free_bulk(&w.ws.alloc_ref[0], C.unsigned(n))
			w.ws.nalloc = 0
		}
		C.fy_ws_free(w.ws)
		w.ws = nil
	}
}
