package conf

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"go.uber.org/zap"
)

// After a large table change (a full table loaded, a tenth of it replaced)
// the heap holds the garbage of the old structures until the next
// collection, the live parts of the tries are scattered among the garbage
// of the parts they replaced, and the runtime returns freed memory to the
// system only slowly: the daemon's RSS stays at several times what the
// routes need. Once such changes have been quiet for trimQuiet, the tries
// are compacted and one forced collection returns the rest; a load in
// progress is not slowed by it.
//
// While such changes run, the collector's target is raised: a load grows
// the heap from nothing to the table's size, and each collection marks all
// of the table built so far, a pointer-rich structure slow to mark. At
// 200% a 900k-route load still collected thirteen times, ten of them while
// the table was small. The goal is instead at least bulkHeapGoal, about
// where the heap peaks at the end of such a load anyway, and at least
// bulkGCPercent above the live heap, so that a larger table is collected
// no more often than at that target: five collections. A higher floor
// cost more in page faults on fresh heap than it saved (bench/full-table.sh,
// loads of 900k routes A/B in turns: medians 5.99 s at 200%, 5.45 s with a
// 256 MB floor, 5.58 s with 384 MB). The trim puts the target back.
const (
	trimAfter     = 10000 // route changes since the last trim
	trimQuiet     = 2 * time.Second
	bulkGCPercent = 200
	bulkHeapGoal  = 256 << 20
)

type trimmer struct {
	mu      sync.Mutex
	changed int
	timer   *time.Timer
	gc      int // the collector's target to put back; 0: none raised
}

// noteChanges counts n route changes and arms the trim when they add up.
func (r *Router) noteChanges(n int) {
	t := &r.trim
	t.mu.Lock()
	defer t.mu.Unlock()
	t.changed += n
	if t.changed < trimAfter {
		return
	}
	t.raiseGC()
	if t.timer != nil {
		t.timer.Reset(trimQuiet)
		return
	}
	t.timer = time.AfterFunc(trimQuiet, func() {
		t.mu.Lock()
		n := t.changed
		t.changed, t.timer = 0, nil
		if t.gc != 0 {
			debug.SetGCPercent(t.gc)
			t.gc = 0
		}
		t.mu.Unlock()
		start := time.Now()
		parts := r.trimHeap()
		if r.Log != nil {
			r.Log.Debug("heap trimmed after route changes", zap.Int("changes", n), zap.Int("parts", parts), zap.Duration("took", time.Since(start)))
		}
	})
}

// raiseGC sets the collector's target for the bulk changes in progress
// from the heap live after the last collection. The first time, it keeps
// the target to put back; a target already as high is left alone.
func (t *trimmer) raiseGC() {
	live, cur, ok := gcState()
	if !ok {
		return
	}
	want := bulkTarget(live)
	if t.gc == 0 {
		if cur >= want {
			return
		}
		t.gc = cur
	}
	if want = max(want, t.gc); want != cur {
		debug.SetGCPercent(want)
	}
}

// bulkTarget is the collector's target during bulk changes with live
// bytes of live heap: a goal of bulkHeapGoal, or bulkGCPercent above live.
func bulkTarget(live uint64) int {
	if live > 0 && live < bulkHeapGoal/3 {
		return int(100 * (bulkHeapGoal - live) / live)
	}
	return bulkGCPercent
}

// gcState is the heap marked live by the last collection, in bytes, and
// the collector's target.
func gcState() (live uint64, pct int, ok bool) {
	s := [2]metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0, 0, false
	}
	return s[0].Value.Uint64(), int(min(s[1].Value.Uint64(), 1<<30)), true
}

// trimHeap compacts the tries and returns the heap's free memory to the
// system; it returns the number of trie parts copied.
func (r *Router) trimHeap() int {
	parts := r.FIB.Compact()
	debug.FreeOSMemory()
	return parts
}
