package dpdk

/*
#include <stddef.h>
#include "shim.h"

enum {
	offsetof_fy_rxpkt_dst = offsetof(struct fy_rxpkt, dst),
	offsetof_fy_rxpkt_len = offsetof(struct fy_rxpkt, len),
	offsetof_fy_rxpkt_port = offsetof(struct fy_rxpkt, port),
	offsetof_fy_rxpkt_tos = offsetof(struct fy_rxpkt, tos),
};
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"ferry/pipeline"
)

// Worker is one pipeline core: an OS thread pinned to a CPU, registered with
// the EAL, polling one queue on every port.
type Worker struct {
	CPU     int
	Queue   int
	ws      *C.struct_fy_ws
	pool    *Pool
	IO      pipeline.IO
	stop    atomic.Bool
	done    chan error
	running bool
}

// The shim's received packets are the pipeline's RxPkt.
var _ = [1]struct{}{}[unsafe.Sizeof(pipeline.RxPkt{})-C.sizeof_struct_fy_rxpkt]
var _ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Dst)-C.offsetof_fy_rxpkt_dst]
var _ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Len)-C.offsetof_fy_rxpkt_len]
var _ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.Port)-C.offsetof_fy_rxpkt_port]
var _ = [1]struct{}{}[unsafe.Offsetof(pipeline.RxPkt{}.TOS)-C.offsetof_fy_rxpkt_tos]

// RxPassMax is how many packets one pass receives at most, over all ports.
const RxPassMax = C.FY_RX_MAX

// NewWorker prepares the C workspace for queue q on ports and wires the
// pipeline's views over it. Each pass takes up to rxBurst packets from
// every port, fewer where the ports together would exceed RxPassMax (see
// RxBurst).
func NewWorker(cpu, q int, ports []Port, pool *Pool, rxBurst int) (*Worker, error) {
	if len(ports) > MaxPorts || len(ports) == 0 {
		return nil, fmt.Errorf("worker: %d ports, 1 to %d", len(ports), MaxPorts)
	}
	if rxBurst < 1 {
		return nil, fmt.Errorf("worker: receive burst %d", rxBurst)
	}
	ws := C.fy_ws_new()
	if ws == nil {
		return nil, fmt.Errorf("worker on cpu %d: cannot allocate workspace", cpu)
	}
	ws.nports = C.uint16_t(len(ports))
	ws.queue = C.uint16_t(q)
	ws.rx_burst = C.uint16_t(RxBurst(rxBurst, len(ports)))
	for i, p := range ports {
		ws.port_ids[i] = C.uint16_t(p.ID)
	}
	w := &Worker{CPU: cpu, Queue: q, ws: ws, pool: pool, done: make(chan error, 1)}
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

// Start runs the loop on its own locked, pinned OS thread and returns once
// the thread is pinned and registered. The processor is called once per
// burst (an interface call per burst, not per packet).
func (w *Worker) Start(p Processor) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread stays locked: it ends with the goroutine, taking its
		// affinity and EAL registration with it.
		if ret := C.fy_pin(C.int(w.CPU)); ret != 0 {
			started <- fmt.Errorf("pin worker to cpu %d: error %d", w.CPU, int(ret))
			return
		}
		if ret := C.fy_thread_register(); ret != 0 {
			started <- &Error{Op: "register worker thread with EAL", Code: int(C.fy_errno())}
			return
		}
		started <- nil
		w.loop(p)
		p.Drain()
		C.fy_tx(w.ws)
		C.fy_thread_unregister()
		w.done <- nil
	}()
	err := <-started
	if err == nil {
		w.running = true
	}
	return err
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
			C.fy_tx(ws)
			lastTick = now
		}
		if idle < longIdle {
			time.Sleep(shortNap)
		} else {
			time.Sleep(longNap)
		}
	}
}

// Stop ends the loop and waits for it; held buffers are freed.
func (w *Worker) Stop() error {
	if !w.running {
		return nil
	}
	w.stop.Store(true)
	w.running = false
	return <-w.done
}

// Counters are the shim's per-port totals for this worker.
func (w *Worker) PortCounters(i int) (rx, tx, txFull uint64) {
	ws := w.ws
	return uint64(atomicLoad64(&ws.rx_pkts[i])), uint64(atomicLoad64(&ws.tx_pkts[i])), uint64(atomicLoad64(&ws.tx_full[i]))
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
