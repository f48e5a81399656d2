package dpdk

/*
#include <stdint.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"sync"
)

// Lcore is what the EAL made of one logical core: whether it exists, and
// the CPUs its thread runs on (several lcores may share one, as
// `--lcores 0@0,1@1,2@1` makes them).
type Lcore struct {
	ID      int
	Enabled bool
	Main    bool
	Socket  int
	CPUs    []int
}

// LcoreInfo reads one lcore of the running EAL.
func LcoreInfo(id int) (Lcore, error) {
	if id < 0 || id >= int(C.fy_max_lcore()) {
		return Lcore{ID: id}, fmt.Errorf("lcore %d out of range 0-%d", id, int(C.fy_max_lcore())-1)
	}
	var li C.struct_fy_lcore_info
	if ret := C.fy_lcore_info(C.unsigned(id), &li); ret != 0 {
		return Lcore{ID: id}, errorf(ret, "read lcore %d", id)
	}
	l := Lcore{ID: id, Enabled: li.enabled != 0, Main: li.is_main != 0, Socket: int(li.socket)}
	for w := range li.cpus {
		for b := 0; b < 64; b++ {
			if uint64(li.cpus[w])&(1<<b) != 0 {
				l.CPUs = append(l.CPUs, w*64+b)
			}
		}
	}
	return l, nil
}

// PipelineLcore checks that id can run a pipeline: an lcore of this EAL
// (given with -l or --lcores) other than the main one, which serves the
// control plane.
func PipelineLcore(id int) (Lcore, error) {
	l, err := LcoreInfo(id)
	if err != nil {
		return l, err
	}
	if !l.Enabled {
		return l, fmt.Errorf("lcore %d is not one of the EAL's (give it with -l or --lcores)", id)
	}
	if l.Main {
		return l, fmt.Errorf("lcore %d is the EAL's main lcore, which runs the control plane (pick another with --main-lcore)", id)
	}
	return l, nil
}

// launched maps the handle an lcore was launched with to its worker: C
// holds no Go pointer, only the handle.
var launched struct {
	sync.Mutex
	next    uintptr
	workers map[uintptr]*Worker
}

func register(w *Worker) uintptr {
	launched.Lock()
	defer launched.Unlock()
	if launched.workers == nil {
		launched.workers = map[uintptr]*Worker{}
	}
	launched.next++
	launched.workers[launched.next] = w
	return launched.next
}

func unregister(h uintptr) *Worker {
	launched.Lock()
	defer launched.Unlock()
	w := launched.workers[h]
	delete(launched.workers, h)
	return w
}

// fyLcoreMain is where a pipeline's lcore thread enters Go: it runs the
// worker's loop until Stop, on the thread and CPUs the EAL gave the lcore.
//
//export fyLcoreMain
func fyLcoreMain(handle C.uintptr_t) {
	w := unregister(uintptr(handle))
	if w == nil {
		return
	}
	w.run()
}
