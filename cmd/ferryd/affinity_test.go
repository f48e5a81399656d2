package main

import (
	"os"
	"runtime"
	"strconv"
	"testing"
)

// Every thread, and any made afterwards, keeps off the pipeline core.
func TestKeepOffCores(t *testing.T) {
	all, err := getAffinity(0)
	if err != nil {
		t.Fatal(err)
	}
	cpus := all.cpus()
	if len(cpus) < 2 {
		t.Skip("needs two CPUs")
	}
	core := cpus[len(cpus)-1]
	rest, err := keepOffCores([]int{core})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != len(cpus)-1 {
		t.Fatalf("left %v of %v", rest, cpus)
	}
	// A thread the runtime makes now inherits the set.
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		<-done
	}()
	defer close(done)
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		m, err := getAffinity(tid)
		if err != nil {
			continue
		}
		if m.has(core) {
			t.Errorf("thread %d may still run on CPU %d", tid, core)
		}
	}
	// Only pipeline cores allowed: nothing to move.
	if rest, err := keepOffCores(cpus); err != nil || rest != nil {
		t.Fatalf("all cores taken: %v, %v", rest, err)
	}
}
