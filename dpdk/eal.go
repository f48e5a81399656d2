// Package dpdk is the router's cgo package: a small binding over DPDK's
// EAL, mempools and ethdev, plus the loops that run pipelines on lcores.
// Only it and its sub-packages (the benchmark's packet loop) use cgo.
package dpdk

/*
#cgo pkg-config: libdpdk
#cgo CFLAGS: -O3 -Wno-deprecated-declarations
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// Error is a DPDK error with what was being done.
type Error struct {
	Op   string
	Code int
}

func (e *Error) Error() string {
	code := e.Code
	if code < 0 {
		code = -code
	}
	return fmt.Sprintf("%s: %s (%d)", e.Op, C.GoString(C.fy_strerror(C.int(code))), e.Code)
}

func errorf(code C.int, op string, args ...any) error {
	return &Error{Op: fmt.Sprintf(op, args...), Code: int(code)}
}

var (
	initMu sync.Mutex
	inited bool
)

// Init starts the EAL with args (argv[0] is added). It can run once.
func Init(args []string) error {
	initMu.Lock()
	defer initMu.Unlock()
	if inited {
		return fmt.Errorf("dpdk: EAL already initialised")
	}
	argv := append([]string{"ferryd"}, args...)
	cargs := make([]*C.char, len(argv)+1)
	for i, a := range argv {
		cargs[i] = C.CString(a)
	}
	// The EAL keeps pointers into argv: never free them.
	ret := C.fy_eal_init(C.int(len(argv)), (**C.char)(unsafe.Pointer(&cargs[0])))
	if ret < 0 {
		return &Error{Op: "EAL init", Code: int(C.fy_errno())}
	}
	inited = true
	return nil
}

// Cleanup releases the EAL's resources (hugepage files among them).
func Cleanup() {
	initMu.Lock()
	defer initMu.Unlock()
	if inited {
		C.fy_eal_cleanup()
		inited = false
	}
}

// Pool is a pktmbuf mempool.
type Pool struct {
	p    *C.struct_rte_mempool
	Name string
}

// NewPool creates a packet buffer pool of n buffers with a per-lcore cache.
func NewPool(name string, n, cacheSize, dataRoom int) (*Pool, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	p := C.fy_pool_create(cname, C.unsigned(n), C.unsigned(cacheSize), C.unsigned(dataRoom))
	if p == nil {
		return nil, &Error{Op: fmt.Sprintf("create mbuf pool %s (%d buffers)", name, n), Code: int(C.fy_errno())}
	}
	return &Pool{p: p, Name: name}, nil
}

// Mempool is the rte_mempool behind p, for C code in other packages (whose
// C types are not this package's).
func (p *Pool) Mempool() unsafe.Pointer { return unsafe.Pointer(p.p) }
