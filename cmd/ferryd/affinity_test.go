package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
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

// Without -l or --lcores, lcore N runs on CPU N and the main lcore is
// another id, named with --main-lcore.
func TestLcoreArgs(t *testing.T) {
	for _, cores := range [][]int{{1}, {0, 1}, {0}} {
		args := lcoreArgs(cores)
		if len(args) != 4 || args[0] != "--lcores" || args[2] != "--main-lcore" {
			t.Fatalf("cores %v: %q", cores, args)
		}
		main, _ := strconv.Atoi(args[3])
		for _, c := range cores {
			if c == main {
				t.Fatalf("cores %v: main lcore %d is a pipeline's", cores, main)
			}
			if !strings.Contains(","+args[1]+",", ","+strconv.Itoa(c)+"@"+strconv.Itoa(c)+",") {
				t.Fatalf("cores %v: %q does not map lcore %d onto CPU %d", cores, args[1], c, c)
			}
		}
		if !strings.HasPrefix(args[1], args[3]+"@") {
			t.Fatalf("cores %v: %q lacks the main lcore %s", cores, args[1], args[3])
		}
	}
}
