package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// threadTimes are the scheduler's totals for one thread of the watched
// process: time run on a CPU and time spent runnable but waiting for one.
type threadTimes struct {
	name          string
	runNs, waitNs uint64
}

// sampleThreads reads /proc/PID/task/*/schedstat. The device under test's
// busiest thread is its pipeline core; how much of the window it actually
// ran tells whether the core was shared with other work.
func sampleThreads(pid int) (map[int]threadTimes, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("threads of pid %d: %w", pid, err)
	}
	out := make(map[int]threadTimes, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue // the thread ended
		}
		fs := strings.Fields(string(b))
		if len(fs) < 2 {
			continue
		}
		run, _ := strconv.ParseUint(fs[0], 10, 64)
		wait, _ := strconv.ParseUint(fs[1], 10, 64)
		comm, _ := os.ReadFile(filepath.Join(dir, e.Name(), "comm"))
		out[tid] = threadTimes{name: strings.TrimSpace(string(comm)), runNs: run, waitNs: wait}
	}
	return out, nil
}

// ThreadShare is the busiest thread of the device under test in a window.
type ThreadShare struct {
	PID       int     `json:"pid"`
	TID       int     `json:"tid"`
	Name      string  `json:"name"`
	CPUShare  float64 `json:"cpu_share"`  // run time / window
	WaitShare float64 `json:"wait_share"` // runnable-but-waiting time / window
}

func busiest(pid int, before, after map[int]threadTimes, windowNs float64) *ThreadShare {
	var best *ThreadShare
	var bestRun uint64
	for tid, a := range after {
		b, ok := before[tid]
		if !ok || a.runNs < b.runNs {
			continue
		}
		if d := a.runNs - b.runNs; best == nil || d > bestRun {
			bestRun = d
			best = &ThreadShare{PID: pid, TID: tid, Name: a.name,
				CPUShare:  float64(d) / windowNs,
				WaitShare: float64(a.waitNs-b.waitNs) / windowNs}
		}
	}
	return best
}
