package fib

import "time"

// Deferred block builds. A bulk load in random prefix order (a full table
// from a file, a routing daemon re-sending its table) changes about one
// /16 block of the merged structure per route, and building each block
// again after every request cost more than the trie inserts themselves.
// A batch that changes many blocks instead marks them valSlow: readers
// take the rule walk over the tries, which already hold the change, for
// those addresses only. A route change is in effect when its batch
// returns either way; only the speed of the lookups it touched waits.
//
// The blocks are built once the changes pause for deferQuiet. During a
// long load they are built too whenever the oldest deferral is
// deferBuildRatio times as old as the last such build took, and at least
// deferMin: the load spends at most about a fifth of its time on builds,
// and no block stays on the slow path for long under changes that never
// pause. deferMin is long (a full table loads in less) because traffic
// that waits on the slow blocks has them built at once anyway (below):
// builds in the middle of a load that nothing waits on only slowed it.
// Past fullRebuildBlocks, a build is a full one that keeps the
// answers (rebuild).
//
// The price would be forwarding speed during a bulk change: the rule walk
// takes a few hundred nanoseconds, the merged structure a few, and a
// change in random prefix order soon has most blocks waiting. That is
// right for blocks no traffic goes to, and wrong for those it does (a
// failover moving every route to another gateway under load). So the
// pipelines tell which /16 blocks their lookups go to (used.go), and a
// batch builds at once its blocks that traffic uses, and those waiting
// that traffic has come to since, and defers only the rest. Traffic
// spread over every block has them all built at once; traffic to a
// thousand destinations has a few dozen of a batch's thousand or so
// blocks built at once, not all of them.
//
// While blocks wait, lookups there see the tries, where a batch is
// published node by node, as the kernel's FIB is changed route by route:
// each change is whole, but a batch's changes may be seen one before
// another (elsewhere the merged structure shows a batch at once).

// deferMinBlocks is how many changed /16 blocks make a batch defer their
// builds. Changes of prefixes up to /8 (whole chunks) do not count: they
// are few, and a chunk's blocks mostly keep their nodes.
const deferMinBlocks = 256

const (
	deferQuiet      = 50 * time.Millisecond
	deferMin        = 10 * time.Second
	deferBuildRatio = 4
)

// deferTimes are the writer's deferQuiet and deferMin, which a test may
// set for its FIB.
func (w *fastWriter) deferTimes() (quiet, minAge time.Duration) {
	quiet, minAge = deferQuiet, deferMin
	if w.quiet != 0 {
		quiet = w.quiet
	}
	if w.minAge != 0 {
		minAge = w.minAge
	}
	return quiet, minAge
}

// deferFast handles d when it is large or blocks are deferred already,
// and reports whether it did: it builds the blocks traffic uses (and takes
// them out of d), and marks the others slow instead of building them. It
// builds everything deferred instead when the oldest deferral is old
// enough.
func (f *FIB) deferFast(d *dirtySet) bool {
	w := &f.fw
	pend := &w.pending
	if f.fast.Load() == nil || w.deferOff || (!pend.any() && d.n < deferMinBlocks) {
		return false
	}
	now := time.Now()
	// What traffic uses is built now: the batch's blocks there, and those
	// waiting that lookups have come to since.
	f.used.age(now)
	hot := &w.hot
	f.used.moveUsed(d, hot)
	f.used.moveUsed(pend, hot)
	if hot.any() {
		rebuilds := w.rebuilds
		f.applyFast(hot)
		hot.reset()
		if w.rebuilds != rebuilds {
			return true // a full build: everything, the rest of d too
		}
	}
	if !d.any() {
		return true
	}
	if !pend.any() {
		w.pendingSince = now
	}
	fs := &w.cur
	if cap(fs.chunks)-len(fs.chunks) < 256*(1+len(fs.more))*min(256, d.nchunks+len(d.list)) {
		fs.compactChunks()
	}
	w.next = fs
	defer func() { w.next = nil }()
	for st := 0; st <= len(fs.more); st++ {
		w.selectStruct(st)
		w.own = [256]bool{}
		for hi := uint32(0); hi < 256; hi++ {
			if d.hasChunk(hi) && !pend.hasChunk(hi) {
				w.ownChunk(hi, false)
				c := fs.chunk(hi)
				for lo := range c {
					c[lo] = valSlow
				}
			}
		}
		for _, b := range d.list {
			hi, lo := b>>8, b&255
			if !pend.hasBlock(b) && fs.chunk(hi)[lo] != valSlow {
				w.ownChunk(hi, false)
				fs.chunk(hi)[lo] = valSlow
			}
		}
	}
	w.selectStruct(0)
	pend.merge(d)
	quiet, minAge := w.deferTimes()
	if age := now.Sub(w.pendingSince); age >= minAge && age >= time.Duration(deferBuildRatio)*w.buildTook {
		f.buildDeferredLocked()
		return true
	}
	f.publishFast()
	w.lastDefer = now
	if w.timer == nil {
		w.timer = time.AfterFunc(quiet, f.buildWhenQuiet)
	} else {
		w.timer.Reset(quiet)
	}
	return true
}

// buildWhenQuiet builds the deferred blocks when no batch deferred more
// for deferQuiet; else it waits again. (The timer may fire while a batch
// holds the lock: that batch's deferral counts.)
func (f *FIB) buildWhenQuiet() {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &f.fw
	if !w.pending.any() {
		return
	}
	quiet, _ := w.deferTimes()
	if wait := quiet - time.Since(w.lastDefer); wait > 0 {
		w.timer.Reset(wait)
		return
	}
	f.buildDeferredLocked()
}

// BuildDeferred builds the blocks whose builds bulk changes deferred and
// publishes them: readers are back on the fast path everywhere. A pause in
// the changes does it on its own; callers that measure a load call it to
// include its cost.
func (f *FIB) BuildDeferred() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buildDeferredLocked()
}

func (f *FIB) buildDeferredLocked() {
	pend := &f.fw.pending
	if !pend.any() {
		return
	}
	t0 := time.Now()
	f.applyFast(pend)
	pend.reset()
	f.fw.buildTook = time.Since(t0)
}
