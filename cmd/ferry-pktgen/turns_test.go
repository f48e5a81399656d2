package main

import (
	"fmt"
	"os/exec"
	"reflect"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestTurnsStopAllButOne(t *testing.T) {
	var pids []int
	for i := 0; i < 3; i++ {
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	state := func() []bool {
		var st []bool
		for _, pid := range pids {
			ok, err := allStopped(pid)
			if err != nil {
				t.Fatal(err)
			}
			st = append(st, ok)
		}
		return st
	}
	tn := &turns{pids: pids, log: zap.NewNop()}
	// Devices arrive stopped by whoever started them: the first turn
	// must continue its own.
	if err := tn.only(0); err != nil {
		t.Fatal(err)
	}
	if got := state(); !reflect.DeepEqual(got, []bool{false, true, true}) {
		t.Fatalf("after turn 0: stopped %v", got)
	}
	if err := tn.only(2); err != nil {
		t.Fatal(err)
	}
	// SIGCONT takes effect at once but is seen in /proc a moment later.
	if err := waitRunning(pids[2]); err != nil {
		t.Fatal(err)
	}
	if got := state(); !reflect.DeepEqual(got, []bool{true, true, false}) {
		t.Fatalf("after turn 2: stopped %v", got)
	}
	tn.release()
	for _, pid := range pids {
		if err := waitRunning(pid); err != nil {
			t.Fatal(err)
		}
	}
}

func waitRunning(pid int) error {
	for i := 0; i < 1000; i++ {
		ok, err := allStopped(pid)
		if err != nil || !ok {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("pid %d still stopped", pid)
}

// A single device, stopped by whoever started it until its turn, runs in
// its turn.
func TestTurnsOneDeviceContinued(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := waitStopped(pid, time.Second); err != nil {
		t.Fatal(err)
	}
	tn := &turns{pids: []int{pid}, log: zap.NewNop()}
	if err := tn.only(0); err != nil {
		t.Fatal(err)
	}
	if err := waitRunning(pid); err != nil {
		t.Fatal(err)
	}
	tn.release()
}

func TestPairsAndLabels(t *testing.T) {
	devs := []string{"net_memif0", "net_memif1", "net_memif2", "net_memif3"}
	o := &options{duts: 2}
	got, err := pairNames(o, devs)
	if err != nil || !reflect.DeepEqual(got, [][2]string{{"net_memif0", "net_memif1"}, {"net_memif2", "net_memif3"}}) {
		t.Fatalf("pairs %v, %v", got, err)
	}
	for _, bad := range []*options{{duts: 3}, {duts: 2, txDev: "net_memif0"}} {
		if _, err := pairNames(bad, devs); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if got, err := pairNames(&options{duts: 1}, devs[:1]); err != nil || got[0] != [2]string{"net_memif0", "net_memif0"} {
		t.Fatalf("one device loops to itself: %v, %v", got, err)
	}
	o.label = "ferryd,l3fwd"
	if l, err := dutLabels(o); err != nil || !reflect.DeepEqual(l, []string{"ferryd", "l3fwd"}) {
		t.Fatalf("labels %v, %v", l, err)
	}
	o.label = "ferryd"
	if _, err := dutLabels(o); err == nil {
		t.Fatal("one label for two devices accepted")
	}
	o.startFile = "start"
	if err := startPIDs(o, "12\n34\n"); err != nil || !reflect.DeepEqual(o.watchPIDs, []int{12, 34}) {
		t.Fatalf("pids %v, %v", o.watchPIDs, err)
	}
	for _, bad := range []string{"12\n", "12 x\n", "12 -3"} {
		if err := startPIDs(o, bad); err == nil {
			t.Errorf("start file %q accepted", bad)
		}
	}
	// One device, which the bench stopped until its turn.
	o.duts, o.watchPIDs = 1, nil
	if err := startPIDs(o, "56\n"); err != nil || !reflect.DeepEqual(o.watchPIDs, []int{56}) {
		t.Fatalf("one device's pids %v, %v", o.watchPIDs, err)
	}
}
