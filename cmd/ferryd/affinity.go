package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// cpuMask is a sched_setaffinity mask for up to 1024 CPUs.
type cpuMask [16]uint64

func (m *cpuMask) has(c int) bool { return c >= 0 && c < 1024 && m[c/64]&(1<<(c%64)) != 0 }
func (m *cpuMask) set(c int)      { m[c/64] |= 1 << (c % 64) }

func (m *cpuMask) cpus() []int {
	var out []int
	for c := 0; c < 1024; c++ {
		if m.has(c) {
			out = append(out, c)
		}
	}
	return out
}

func getAffinity(tid int) (cpuMask, error) {
	var m cpuMask
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		return m, e
	}
	return m, nil
}

func setAffinity(tid int, m *cpuMask) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m)))
	if e != 0 {
		return e
	}
	return nil
}

// keepOffCores moves every thread of the process off the pipeline cores,
// as DPDK keeps its control threads off the lcores: the Go runtime's
// threads (sysmon, the collector, timers) and the control plane would
// otherwise preempt the pipelines there, hundreds of times a second.
// Threads made later inherit the set from the thread that makes them; the
// runtime makes them from unpinned threads, and each pipeline pins its
// own. It returns the CPUs left to those threads, none when no CPU but
// the pipeline cores is allowed (nothing is moved then).
func keepOffCores(cores []int) ([]int, error) {
	allowed, err := getAffinity(0)
	if err != nil {
		return nil, fmt.Errorf("read CPU affinity: %w", err)
	}
	var pipe, rest cpuMask
	for _, c := range cores {
		if c >= 0 && c < 1024 {
			pipe.set(c)
		}
	}
	for _, c := range allowed.cpus() {
		if !pipe.has(c) {
			rest.set(c)
		}
	}
	if len(rest.cpus()) == 0 {
		return nil, nil
	}
	// Threads may start while the list is read: go over it until no new
	// one turns up.
	done := map[int]bool{}
	for more := true; more; {
		more = false
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := setAffinity(tid, &rest); err != nil && err != syscall.ESRCH {
				return nil, fmt.Errorf("thread %d: set CPU affinity: %w", tid, err)
			}
			done[tid], more = true, true
		}
	}
	return rest.cpus(), nil
}
