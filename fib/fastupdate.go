package fib

import (
	"math/bits"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"
)

// Readers and writers of the lookup structures. Readers take no lock:
// they load a snapshot (FIB.fast) once and walk it while writers change
// the structures. What makes that safe:
//
//  1. Nothing a published snapshot reaches is ever written, but for the
//     one in-place store of rule 3. A changed /16 block is rebuilt from the
//     tries and appended to the node (and child block) arena past the
//     length of every published snapshot; a changed chunk of the top level
//     is first copied to the end of the chunk arena (ownChunk), then
//     changed there. A snapshot's slices share their arrays with the
//     writer's, so the appends land where readers of older snapshots
//     never look.
//  2. Readers index the arenas up to their capacity, not their length
//     (nodeLPM, the bulk walk): a node appended after a snapshot was
//     published is in the array it holds, which stays the same array as
//     long as it has room (roomy gives it). An arena that would have to
//     grow is instead compacted into a new one (compact), and a snapshot
//     that uses the new array is published whole.
//  3. A batch that changed a single block, needed no new answer and no
//     arena change, with only structure 0 (no policy rules), stores the
//     block's new top entry in place with one atomic store: a reader sees
//     the old entry or the new, each whole. A reader still on an older
//     snapshot may so see a node whose answer its own answer table lacks
//     (an index past its length): it leaves that address to the full
//     lookup (InputView.Shared, TestOlderViewSeesNewerAnswerInPlace).
//  4. Any other batch publishes a new snapshot with one atomic store. A
//     snapshot has its own copy of the top levels (fsnap.top and more) and
//     of every chunk it changed; when the child block arena moved in an
//     update, it gets its own chunk arena too (unshareChunks), so that a
//     later in-place store cannot lead an older reader past its arena.
//  5. Answers are recomputed (ports changed) into a new table, never in
//     place; the garbage that updates leave in the arenas is reclaimed by
//     compact once it outgrows the live data, the answers' by a full
//     rebuild, more rarely.

// roomy gives the arenas room to grow: an update appends where readers of
// older snapshots do not look, and a full arena is compacted rather than
// grown.
func (fs *fsnap) roomy() {
	fs.chunks = withRoom(fs.chunks, chunkRoom<<8)
	fs.nodes = withRoom(fs.nodes, nodeRoom(len(fs.nodes)))
	fs.kids = withRoom(fs.kids, kidRoom(len(fs.kids)))
	hugeArena(fs.chunks)
	hugeArena(fs.nodes)
	hugeArena(fs.kids)
}

// compactArenas compacts the snapshot being written with room for the
// garbage scale allows.
func (w *fastWriter) compactArenas() {
	fs := &w.cur
	*fs = *fs.compact(max(w.scale, 1))
	w.live = fs.arenaBytes()
	w.compactions++
}

// A compaction copies the live nodes, and the garbage an update leaves is
// about one node per block it changed: a load of a full table in batches
// of a few thousand routes would compact every few batches, copying the
// whole arena each time. Compactions that come less than bulkCompactionGap
// apart double the room and the garbage allowed (up to maxRoomScale times
// the usual), so that a load compacts a logarithmic number of times; the
// daemon compacts tight again once the changes are quiet (FIB.Compact).
const (
	bulkCompactionGap = time.Second
	maxRoomScale      = 4
)

// The arenas' room: chunk copies (1 KB each, one per chunk a batch changes),
// and for the node and child block garbage about what the compaction rule
// lets accumulate.
const chunkRoom = 1024

func nodeRoom(words int) int { return words/2 + 128<<10 }

func kidRoom(vals int) int { return vals/2 + 256<<8 }

// compactChunks copies the live chunks into a fresh arena: cheaper than
// compact, for when chunk copies filled theirs.
func (fs *fsnap) compactChunks() {
	c := make([]uint32, 0, (256*(1+len(fs.more))+chunkRoom)<<8)
	for s := 0; s <= len(fs.more); s++ {
		top := fs.topOf(s)
		for hi := range top {
			c = append(c, fs.chunks[top[hi]<<8:][:256]...)
			top[hi] = uint32(len(c)>>8) - 1
		}
	}
	fs.chunks = c
	hugeArena(fs.chunks)
}

func withRoom[T any](s []T, room int) []T {
	if cap(s)-len(s) >= room {
		return s
	}
	return append(make([]T, 0, len(s)+room), s...)
}

// publishFast makes the writers' snapshot the readers' one.
func (f *FIB) publishFast() {
	fs := new(fsnap)
	*fs = f.fw.cur
	fs.more = slices.Clone(fs.more)
	f.fast.Store(fs)
}

// updateFast rebuilds the chunks and /16 blocks marked in d and publishes
// the result, or rebuilds everything when it changed too much or the
// answers hold too much garbage.
//
// A batch that changed one /16 block and needed no new answer and no new
// arena (the common single route change) is published in place: the
// block's new node is appended past what readers index, then its top
// entry is stored atomically, as fib_trie links a new tnode into its
// parent. A reader still on an older snapshot may see that entry early:
// the change is whole either way, and where the new node names an answer
// the older snapshot's table lacks, the reader looks the address up in
// full (InputView.Shared).
func (f *FIB) updateFast(d *dirtySet) {
	if !f.deferFast(d) {
		f.applyFast(d)
	}
}

// applyFast is updateFast without deferral.
func (f *FIB) applyFast(d *dirtySet) {
	pub := f.fast.Load()
	w := &f.fw
	fs := &w.cur
	if pub == nil || len(fs.ans) > 2*w.nAns+4096 {
		f.rebuildFast()
		return
	}
	if d.n > fullRebuildBlocks || d.nchunks == 256 {
		f.rebuild(true)
		return
	}
	slack := w.slack
	if slack == 0 {
		slack = 1 << 20
	}
	needN := maxNodeLen * (256*d.nchunks + len(d.list))
	if fs.arenaBytes() > w.live+max(w.scale, 1)*w.live/2+slack || cap(fs.nodes)-len(fs.nodes) < needN {
		now := time.Now()
		if now.Sub(w.compacted) < bulkCompactionGap {
			w.scale = min(2*w.scale, maxRoomScale)
		} else {
			w.scale = 1
		}
		w.compacted = now
		w.compactArenas()
	}
	if cap(fs.chunks)-len(fs.chunks) < 256*(1+len(fs.more))*min(256, d.nchunks+len(d.list)) {
		fs.compactChunks()
	}
	w.next = fs
	w.ps = f.portSnap.Load()
	defer func() { w.next, w.ps = nil, nil }()
	w.own = [256]bool{}
	var roots mergeRoots
	f.fastRoots(0, &roots)
	if d.nchunks == 0 && len(d.list) == 1 && len(fs.more) == 0 {
		nAns := len(fs.ans)
		b := d.list[0]
		hi, lo := b>>8, b&255
		old := fs.chunk(hi)[lo]
		e := w.block(&roots, b, old)
		if e == old {
			return
		}
		if len(fs.ans) == nAns && sameArena(fs.chunks, pub.chunks) && sameArena(fs.nodes, pub.nodes) && sameArena(fs.kids, pub.kids) && pub.top == fs.top {
			atomic.StoreUint32(&fs.chunk(hi)[lo], e)
			return
		}
		w.ownChunk(hi, false)
		fs.chunk(hi)[lo] = e
		fs.unshareChunks(pub)
		f.publishFast()
		return
	}
	for st := 0; st <= len(fs.more); st++ {
		w.selectStruct(st)
		w.own = [256]bool{}
		f.fastRoots(st, &roots)
		w.update(&roots, d)
	}
	w.selectStruct(0)
	fs.unshareChunks(pub)
	f.publishFast()
}

// update rebuilds the chunks and blocks d marks in the structure selected.
func (w *fastWriter) update(roots *mergeRoots, d *dirtySet) {
	fs := w.next
	var out [256]uint32
	for hi := uint32(0); hi < 256; hi++ {
		if d.hasChunk(hi) {
			w.chunk(roots, hi, fs.chunk(hi), &out)
			w.setChunk(hi, &out, false)
		}
	}
	for _, b := range d.list {
		hi, lo := b>>8, b&255
		if d.hasChunk(hi) {
			continue
		}
		old := fs.chunk(hi)[lo]
		e := w.block(roots, b, old)
		if e == old {
			continue
		}
		w.ownChunk(hi, false)
		fs.chunk(hi)[lo] = e
	}
}

// unshareChunks gives fs a chunk arena of its own when its child blocks
// outgrew theirs in this update and moved: a reader of an older snapshot
// indexes the child blocks of its own arena, and an entry stored in place
// later, in a chunk it shared, would lead it past that arena's end. (The
// node arena never moves but in compact, which copies the chunks too.)
func (fs *fsnap) unshareChunks(pub *fsnap) {
	if !sameArena(fs.kids, pub.kids) && sameArena(fs.chunks, pub.chunks) {
		fs.compactChunks()
	}
}

// sameArena reports whether a and b share their array.
func sameArena[T any](a, b []T) bool {
	return cap(a) > 0 && cap(b) > 0 && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// compact returns a copy of fs without the garbage in its arenas: the
// nodes and child blocks the top level reaches, copied into fresh arenas.
// The answers are shared.
func (fs *fsnap) compact(scale int) *fsnap {
	c := &fsnap{ans: fs.ans, inRes: fs.inRes, prog: fs.prog, more: make([][256]uint32, len(fs.more))}
	words, blocks := 0, 0
	for s := 0; s <= len(fs.more); s++ {
		top := fs.topOf(s)
		for hi := range top {
			for _, e := range fs.chunks[top[hi]<<8:][:256] {
				if e&nodeBit != 0 {
					nd := fs.nodes[e&^nodeBit:]
					words += nodeLen(nd)
					if nd[nodeHdr]&hdrKids != 0 {
						cbits, _ := nodeKids(nd)
						blocks += ones(cbits)
					}
				}
			}
		}
	}
	c.chunks = make([]uint32, 0, (256*(1+len(fs.more))+chunkRoom)<<8)
	c.nodes = make([]uint64, 0, words+scale*nodeRoom(words))
	c.nodes = append(c.nodes, zeroWords[:8]...)
	c.kids = make([]uint16, 0, blocks<<8+scale*kidRoom(blocks<<8))
	for s := 0; s <= len(fs.more); s++ {
		top, ctop := fs.topOf(s), c.topOf(s)
		for hi := range top {
			ctop[hi] = uint32(len(c.chunks) >> 8)
			c.chunks = append(c.chunks, fs.chunks[top[hi]<<8:][:256]...)
			nc := c.chunks[ctop[hi]<<8:][:256]
			for lo, e := range nc {
				if e&nodeBit != 0 {
					nc[lo] = nodeBit | c.copyNode(fs, e&^nodeBit)
				}
			}
		}
	}
	hugeArena(c.chunks)
	hugeArena(c.nodes)
	hugeArena(c.kids)
	return c
}

func ones(bm *[4]uint64) int {
	return bits.OnesCount64(bm[0]) + bits.OnesCount64(bm[1]) + bits.OnesCount64(bm[2]) + bits.OnesCount64(bm[3])
}

// copyNode appends a copy of the node of fs at o, with its child blocks,
// and returns its offset.
func (c *fsnap) copyNode(fs *fsnap, o uint32) uint32 {
	nd := fs.nodes[o:]
	no := len(c.nodes)
	c.nodes = append(c.nodes, nd[:nodeLen(nd)]...)
	if nd[nodeHdr]&hdrKids != 0 {
		cbits, cbase := nodeKids(nd)
		base := int(*cbase) << 8
		_, nbase := nodeKids(c.nodes[no:])
		*nbase = uint64(len(c.kids) >> 8)
		c.kids = append(c.kids, fs.kids[base:base+ones(cbits)<<8]...)
	}
	return uint32(no)
}

// fullRebuildBlocks is how many changed /16 blocks make an update rebuild
// everything instead.
var fullRebuildBlocks = 4096

// BuildStats counts the merged structure's full builds and the
// compactions of its arenas since the FIB was made.
type BuildStats struct {
	Rebuilds, Compactions int
}

// BuildStats returns the counts of the merged structure's maintenance.
func (f *FIB) BuildStats() BuildStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return BuildStats{Rebuilds: f.fw.rebuilds, Compactions: f.fw.compactions}
}
