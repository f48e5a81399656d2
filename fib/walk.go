package fib

import (
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// bulkN is how many lookups the bulk walk takes level by level at once:
// a whole pass of the data plane. Each level then streams its misses for
// all of them before the next begins, where groups of 32 each paid for
// the pipeline filling and draining at every level (8% more forwarded on
// 900k routes, uniform destinations, when it went from 32 to 256).
const bulkN = 256

// walk is one bulk walk of the merged structure: its arenas, the
// addresses and where their values go, and the walk's scratch. The
// assembly walk (walk_amd64.s) reads it by these offsets.
type walk struct {
	top    *[256]uint32
	chunks unsafe.Pointer // fs.chunks' array
	nodes  unsafe.Pointer // fs.nodes' array
	dsts   *uint32        // n addresses
	out    *uint16        // n values
	n      int            // 1..bulkN
	ent    *[bulkN]uint32 // each address's top-level entry
	// Where each lookup reads next, its node's first line then its value:
	// the assembly's scratch. Go code keeps such pointers in arrays of its
	// own: stored through w, they would move every array w points to onto
	// the heap.
	at  *[bulkN]unsafe.Pointer
	kid *[bulkN]uint8 // the lookups whose value is in a child block
}

// lpmBulk is lpm for up to bulkN addresses, level by level: each level
// computes where every lookup reads next and prefetches those lines, so
// that their cache misses overlap, and the next level reads them. No
// branch depends on a load that may miss: a mispredicted one would discard
// the loads issued after it and serialize the misses again.
func (fs *fsnap) lpmBulk(dsts []uint32, out []uint16) {
	n := min(len(dsts), bulkN)
	if n == 0 {
		return
	}
	dsts, out = dsts[:n], out[:n]
	var ent [bulkN]uint32
	var at [bulkN]unsafe.Pointer
	var kid [bulkN]uint8
	// Offsets in the arenas come from the structure itself, which the
	// writers build within the arenas' capacity: the walk indexes them
	// through base pointers, without bounds checks.
	w := walk{
		top:    &fs.top,
		chunks: unsafe.Pointer(unsafe.SliceData(fs.chunks)),
		nodes:  unsafe.Pointer(unsafe.SliceData(fs.nodes)),
		dsts:   &dsts[0], out: &out[0], n: n,
		ent: &ent, at: &at, kid: &kid,
	}
	if nkid := walkNodes(&w); nkid > 0 {
		fs.walkKids(&w, nkid)
	}
}

// walkNodesGo walks the top level and the nodes for w's addresses: it
// stores each one's value, but for those in a child block, which it lists
// in w.kid and counts. walkNodes is this, in assembly where it can be.
func walkNodesGo(w *walk) int {
	dsts := unsafe.Slice(w.dsts, w.n)
	out := unsafe.Slice(w.out, w.n)
	ent, kid := w.ent, w.kid
	var at [bulkN]unsafe.Pointer
	nodes := w.nodes
	// The top-level entries (256 KB, mostly cached), and the first line of
	// each node. A top entry that is a value (under 2^16) points within
	// the arena's first 512 KB, and the arena always has room for them:
	// its prefetch only wastes a line.
	for i, a := range dsts {
		e := atomic.LoadUint32((*uint32)(unsafe.Add(w.chunks, 4*uintptr(w.top[a>>24]<<8|a>>16&255))))
		ent[i] = e
		at[i] = unsafe.Add(nodes, 8*uintptr(e&^nodeBit))
	}
	prefetch(&at[0], w.n)
	// Where each value is: a 16-bit word in the node arena (in a busy
	// node, in a line after the first), or the top entry itself.
	for i, a := range dsts {
		e := ent[i]
		if e&nodeBit == 0 {
			at[i] = unsafe.Pointer(&ent[i]) // little-endian: the low half
			continue
		}
		nd := unsafe.Add(nodes, 8*uintptr(e&^nodeBit))
		h := *(*uint64)(unsafe.Add(nd, 8*nodeHdr))
		c := a >> 8 & 255
		wd, b := c>>6, c&63
		j := uint32(h>>(16+8*wd)&0xff) + uint32(bits.OnesCount64(*(*uint64)(unsafe.Add(nd, 8*uintptr(wd)))&(2<<b-1))) - 1
		at[i] = unsafe.Add(nd, 8*nodeVals+2*uintptr(j))
	}
	prefetch(&at[0], w.n)
	// The values; slots with longer prefixes are listed, without a branch
	// (a few in a hundred, at random), for walkKids.
	nkid := 0
	for i := range dsts {
		v := *(*uint16)(at[i])
		kid[nkid&(bulkN-1)] = uint8(i)
		// 1 for valKid, 0 for any other value, without a branch.
		nkid += int((uint32(v^valKid) - 1) >> 31)
		if v == valNone {
			// The node's def, from its header (only nodes hold valNone).
			v = uint16(*(*uint64)(unsafe.Add(nodes, 8*(uintptr(ent[i]&^nodeBit)+nodeHdr))))
		}
		out[i] = v
	}
	return nkid
}

// walkKids stores the values of the nkid lookups walkNodes listed, from
// their child blocks: their nodes' children's bitmaps (after the values),
// then the blocks.
func (fs *fsnap) walkKids(w *walk, nkid int) {
	dsts := unsafe.Slice(w.dsts, w.n)
	out := unsafe.Slice(w.out, w.n)
	ent, kid := w.ent, w.kid[:nkid]
	var at [bulkN]unsafe.Pointer
	nodes, kids := w.nodes, unsafe.Pointer(unsafe.SliceData(fs.kids))
	for k, i := range kid {
		nd := unsafe.Add(nodes, 8*uintptr(ent[i]&^nodeBit))
		at[k] = unsafe.Add(nd, 8*uintptr(*(*uint64)(unsafe.Add(nd, 8*nodeHdr))>>48&0xff))
	}
	prefetch(&at[0], nkid)
	for k, i := range kid {
		a := dsts[i]
		nd := fs.nodes[ent[i]&^nodeBit : cap(fs.nodes)] // past len: nodes stored in place
		c := a >> 8 & 255
		at[k] = unsafe.Add(kids, 2*uintptr(kidBlock(nd, nd[nodeHdr], c>>6, c&63)<<8|a&255))
	}
	prefetch(&at[0], nkid)
	for k, i := range kid {
		v := *(*uint16)(at[k])
		if v == valNone {
			v = uint16(*(*uint64)(unsafe.Add(nodes, 8*(uintptr(ent[i]&^nodeBit)+nodeHdr))))
		}
		out[i] = v
	}
}
