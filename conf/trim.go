package conf

import (
	"runtime/debug"
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
// While such changes run, the collector's target is raised to
// bulkGCPercent (when it is lower): a load grows the heap from nothing to
// the table's size, and at the usual target the collector ran some twenty
// times, marking the growing table each time, a fifth of the load's CPU.
// The trim puts the target back. The heap peaks higher during the load
// for it (bench/full-table.sh prints the peak RSS).
const (
	trimAfter     = 10000 // route changes since the last trim
	trimQuiet     = 2 * time.Second
	bulkGCPercent = 200
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
	if t.timer != nil {
		t.timer.Reset(trimQuiet)
		return
	}
	if gc := debug.SetGCPercent(bulkGCPercent); gc < bulkGCPercent {
		t.gc = gc
	} else {
		debug.SetGCPercent(gc)
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

// trimHeap compacts the tries and returns the heap's free memory to the
// system; it returns the number of trie parts copied.
func (r *Router) trimHeap() int {
	parts := r.FIB.Compact()
	debug.FreeOSMemory()
	return parts
}
