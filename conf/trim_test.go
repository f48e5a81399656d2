package conf

import (
	"runtime/debug"
	"testing"
)

func TestBulkTarget(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, bulkGCPercent},        // no collection yet: nothing to go by
		{bulkHeapGoal / 16, 1500}, // a small heap may grow to the goal
		{bulkHeapGoal / 4, 300},
		{bulkHeapGoal / 3, 200},       // where the two meet
		{bulkHeapGoal, bulkGCPercent}, // a large table: the percent
		{10 * bulkHeapGoal, bulkGCPercent},
	} {
		if got := bulkTarget(c.live); got != c.want {
			t.Errorf("bulkTarget(%d MB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// raiseGC raises a lower target and keeps it to put back; a higher one,
// set by the operator, stays.
func TestRaiseGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	var tr trimmer
	tr.raiseGC()
	_, cur, ok := gcState()
	if !ok {
		t.Skip("runtime/metrics has no GC target here")
	}
	if tr.gc != 100 || cur < bulkGCPercent {
		t.Fatalf("from 100: target %d, to put back %d", cur, tr.gc)
	}
	debug.SetGCPercent(1 << 20)
	tr = trimmer{}
	tr.raiseGC()
	if _, cur, _ = gcState(); tr.gc != 0 || cur != 1<<20 {
		t.Fatalf("from a higher target: target %d, to put back %d", cur, tr.gc)
	}
}
