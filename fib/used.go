package fib

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// usedBlocks is which /16 blocks input lookups went to lately. A batch
// that defers its builds builds the blocks traffic uses at once and leaves
// only the others waiting (fastdefer.go).
//
// The pipelines mark the destinations of one pass in many (NoteUsed),
// which costs them nothing measurable, and every lookup that took the
// rule walk for a waiting block: a block the sampling missed is built by
// the next batch after its first walk. The marks are in two generations,
// which a batch that defers swaps when the last swap is usedWindow old: a
// block counts as used until two swaps after its last mark, that is for
// one to two windows while batches come, and longer between them.
type usedBlocks struct {
	_    [64]byte
	gen  atomic.Uint32 // bits[gen&1] is the one marked
	bits [2][1 << 16 / 64]atomic.Uint64
	// Writers only: when gen last moved.
	swapped time.Time
}

// usedWindow is how long a generation of marks lasts. Under traffic a
// pipeline samples hundreds of passes in it.
const usedWindow = time.Second

func (u *usedBlocks) mark(dst uint32) { markIn(&u.bits[u.gen.Load()&1], dst) }

func (u *usedBlocks) markAll(dsts []uint32) {
	cur := &u.bits[u.gen.Load()&1]
	for _, d := range dsts {
		markIn(cur, d)
	}
}

// markIn sets the bit of dst's block in gen. A load first: the line
// stays shared among the cores while the bit is there.
func markIn(gen *[1 << 16 / 64]atomic.Uint64, dst uint32) {
	b := dst >> 16
	if w, m := &gen[b>>6], uint64(1)<<(b&63); w.Load()&m == 0 {
		w.Or(m)
	}
}

// has reports whether block b was marked in either generation.
func (u *usedBlocks) has(b uint32) bool {
	m := uint64(1) << (b & 63)
	return (u.bits[0][b>>6].Load()|u.bits[1][b>>6].Load())&m != 0
}

// hasChunk reports whether a block of chunk hi (/8) was marked.
func (u *usedBlocks) hasChunk(hi uint32) bool {
	for i := hi * 4; i < hi*4+4; i++ {
		if u.bits[0][i].Load()|u.bits[1][i].Load() != 0 {
			return true
		}
	}
	return false
}

// count is the number of blocks marked in either generation.
func (u *usedBlocks) count() int {
	n := 0
	for i := range u.bits[0] {
		n += bits.OnesCount64(u.bits[0][i].Load() | u.bits[1][i].Load())
	}
	return n
}

// age swaps the generations once usedWindow has passed since the last
// swap: the older one is cleared and marked from then on. Writers only.
func (u *usedBlocks) age(now time.Time) {
	if now.Sub(u.swapped) < usedWindow {
		return
	}
	next := u.gen.Load() + 1
	u.clearGen(next & 1)
	u.gen.Store(next)
	u.swapped = now
}

func (u *usedBlocks) clearGen(g uint32) {
	for i := range u.bits[g] {
		u.bits[g][i].Store(0)
	}
}

// moveUsed moves the chunks and blocks of d that traffic used to to.
func (u *usedBlocks) moveUsed(d, to *dirtySet) {
	d.moveIf(to, u.hasChunk, u.has)
}

// NoteUsed tells the writers that lookups went to dsts: the blocks they
// fall in are built at once when a batch changes them (fastdefer.go).
// Pipelines call it for one pass in many.
func (v *InputView) NoteUsed(dsts []uint32) { v.f.used.markAll(dsts) }

// UsedBlocks is how many /16 blocks input lookups went to lately, as the
// pipelines' samples and walks tell.
func (f *FIB) UsedBlocks() int { return f.used.count() }
