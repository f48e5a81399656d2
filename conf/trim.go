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
const (
	trimAfter = 10000 // route changes since the last trim
	trimQuiet = 2 * time.Second
)

type trimmer struct {
	mu      sync.Mutex
	changed int
	timer   *time.Timer
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
	t.timer = time.AfterFunc(trimQuiet, func() {
		t.mu.Lock()
		n := t.changed
		t.changed, t.timer = 0, nil
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
