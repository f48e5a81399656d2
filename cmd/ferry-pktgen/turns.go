package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// turns lets devices under test that share one CPU run one at a time: the
// measured one runs, the others are stopped. A stopped busy-polling device
// takes nothing from the one measured, and turns a second or two apart
// see the same machine, which a virtual machine's host does not keep
// steady for long.
type turns struct {
	pids    []int // none: nothing to take turns with
	log     *zap.Logger
	stopped []bool
}

// only lets device d run and stops every other one, waiting until they
// are stopped.
func (t *turns) only(d int) error {
	if len(t.pids) == 0 {
		return nil
	}
	if t.stopped == nil {
		// Whoever started the devices may have stopped them already, or
		// not: the first turn stops and continues each as it should be.
		t.stopped = make([]bool, len(t.pids))
		for i := range t.stopped {
			t.stopped[i] = i == d
		}
	}
	for i, pid := range t.pids {
		if i == d || t.stopped[i] {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return fmt.Errorf("stop device under test (pid %d): %w", pid, err)
		}
		if err := waitStopped(pid, time.Second); err != nil {
			return err
		}
		t.stopped[i] = true
	}
	if t.stopped[d] {
		if err := syscall.Kill(t.pids[d], syscall.SIGCONT); err != nil {
			return fmt.Errorf("continue device under test (pid %d): %w", t.pids[d], err)
		}
		t.stopped[d] = false
	}
	return nil
}

// release lets every stopped device run again.
func (t *turns) release() {
	for i, st := range t.stopped {
		if !st {
			continue
		}
		if err := syscall.Kill(t.pids[i], syscall.SIGCONT); err != nil {
			t.log.Warn("cannot continue a device under test", zap.Int("pid", t.pids[i]), zap.Error(err))
		}
		t.stopped[i] = false
	}
}

// waitStopped waits until every thread of pid is stopped.
func waitStopped(pid int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := allStopped(pid)
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("device under test (pid %d) did not stop within %s", pid, limit)
		}
		time.Sleep(time.Millisecond)
	}
}

// allStopped reads each thread's state: 'T' once SIGSTOP took it.
func allStopped(pid int) (bool, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tids, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("device under test (pid %d): %w", pid, err)
	}
	for _, tid := range tids {
		b, err := os.ReadFile(dir + "/" + tid.Name() + "/stat")
		if err != nil {
			continue // the thread has gone
		}
		// The state follows the command name, which may hold spaces
		// and parentheses: after the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("device under test (pid %d): unreadable %s/stat", pid, tid.Name())
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			return false, nil
		}
	}
	return true, nil
}
