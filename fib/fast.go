package fib

import (
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// The fast path: with only the default rules, the kernel (since 4.1) looks
// up the local and main tables as one merged trie. Here one read-only
// structure, fsnap, answers for local, main and default together: for every
// address it holds the answer (answer.go) of the longest prefix of the first
// of those tables that has one covering the address (local wins over main,
// main over default, as the rules order them). Answers are shared by all
// routes with the same nexthops and attributes, so the structure stores a
// 16-bit answer index per address range and never a route: a lookup is the
// structure walk plus one load from the small, hot answer table. What an
// answer cannot tell (a TOS route, a dead nexthop, a throw, an output port
// in the key) is marked slow and goes to the exact rule walk over the
// per-table tries, which stay the writers' authoritative structure and the
// single lookups' path.
//
// Layout (DIR-16-8-8, in the spirit of poptrie): a directly indexed top
// level of 2^16 uint32 entries, cut into 256 chunks of 256 so a change
// copies 1 KB instead of 256 KB. The chunks sit in an arena of their own,
// indexed by a 1 KB table: nothing in a snapshot but its slice headers is a
// pointer, so a publish copies no pointer array and the collector has
// nothing to scan in the arenas. An entry is either a value or, with
// nodeBit, the offset of a node for the 16..24 bits in the node arena. A
// node starts on a cache line: a 256-bit bitmap of where runs of equal
// values start, a header word, and the runs' values packed four to a
// word, the first twelve in the same line as the bitmap. The few slots
// with prefixes longer than /24 have a child block of 256 direct values,
// which their run's value (valKid) sends the lookup to; the children's
// bitmap comes after the values, out of the usual lookup's way.
// A lookup is a top entry (256 KB, mostly cached) and a node line; in a
// busy block, with more runs than that line holds, the value is in a
// second line that waits for the first. All in an eighth of DIR-24-8's
// memory. Layouts that read one line per lookup for more memory (256
// direct values per busy block, or a self-contained line per 64 slots)
// measured slower on 900k routes with a 32 MiB L3, 25-43 ns against
// 19-26 ns a lookup: while the structure stays within the last-level
// cache, its size costs more than the second line.
//
// The files: this one is the layout and the readers' walk of one entry;
// fastbuild.go builds blocks, chunks and whole structures from the tries;
// fastupdate.go applies a batch's changes, with the invariants that let
// readers run during them; dirty.go is what a batch changed; inputview.go
// is the readers' interface; walk.go the bulk walk; rulefast.go the policy
// rules over several structures.

const nodeBit = 1 << 31

// Values besides answer indexes.
const (
	valNone = 0xffff // no prefix longer than /16 covers: the node's def
	valSlow = 0xfffe // an answer past what 16 bits index: the rule walk
	// Not in the structure: a trie prefix whose value is to be computed
	// (part.pcode).
	valUnknown = 0xfffd
	// A slot with prefixes longer than /24: the value is in its child
	// block (kidBlock).
	valKid = 0xfffc
)

// Node layout, in uint64 words from the node's offset (a multiple of 8):
// the runs' bitmap (words 0-3), the header, the runs' values four to a
// word, and for a node with children their bitmap (4 words) and the first
// child block's index, at the word the header names.
const (
	nodeHdr    = 4 // def (bits 0-15), lpre (16-47), the children's word (48-55), hdrKids
	nodeVals   = 5 // first word of the values
	hdrKids    = 1 << 63
	maxNodeLen = 80 // words: 5 + 256/4 + 5, padded
)

var (
	zeroChunk [256]uint32
	zeroWords [maxNodeLen]uint64
)

type fsnap struct {
	top [256]uint32 // chunk index, in chunks: the merged structure's
	// more are the top levels of the structures the policy rules need
	// besides the merged one (rulefast.go), structure s at more[s-1]; the
	// arenas and answers are shared. Each snapshot has its own copy.
	more   [][256]uint32
	prog   *ruleProg // the rules compiled over the structures; nil: default rules
	chunks []uint32  // top-level chunks, 256 entries each
	nodes  []uint64  // node arena
	kids   []uint16  // child blocks, 256 values each
	ans    []answer  // see answer.go
	// inRes is each answer as an input lookup's Result (no Route), shared
	// by the bulk lookups' keys.
	inRes []Result
}

// nodeLPM is the value of a in the node at o.
func (fs *fsnap) nodeLPM(o, a uint32) uint16 {
	nd := fs.nodes[o:cap(fs.nodes)] // past len: nodes stored in place
	h := nd[nodeHdr]
	c := a >> 8 & 255
	w, b := c>>6, c&63
	j := runIndex(nd, h, w, b)
	v := uint16(nd[nodeVals+j>>2] >> (j & 3 * 16))
	if v == valKid {
		v = fs.kids[:cap(fs.kids)][kidBlock(nd, h, w, b)<<8|a&255]
	}
	if v == valNone {
		v = uint16(h)
	}
	return v
}

// runIndex is the index of the run holding slot 64w+b: no loop over the
// words before w (whose count would be a mispredicted branch).
func runIndex(nd []uint64, h uint64, w, b uint32) uint32 {
	return uint32(h>>(16+8*w)&0xff) + uint32(bits.OnesCount64(nd[w]&(2<<b-1))) - 1
}

// kidBlock is the index in kids of the child block of slot 64w+b of the
// node nd whose header is h.
func kidBlock(nd []uint64, h uint64, w, b uint32) uint32 {
	ko := uint32(h >> 48 & 0xff)
	r := uint32(bits.OnesCount64(nd[ko+w] & (1<<b - 1)))
	for i := uint32(0); i < w; i++ {
		r += uint32(bits.OnesCount64(nd[ko+i]))
	}
	return uint32(nd[ko+4]) + r
}

// nodeKids returns the children's bitmap and first block of a node with
// children.
func nodeKids(nd []uint64) (cbits *[4]uint64, cbase *uint64) {
	ko := nd[nodeHdr] >> 48 & 0xff
	return (*[4]uint64)(nd[ko : ko+4]), &nd[ko+4]
}

// lpm returns the value for a: the answer index of its prefix (0, the
// answer "no route", when no table covers a), or valSlow.
func (fs *fsnap) lpm(a uint32) uint16 {
	e := fs.entry(a)
	if e&nodeBit == 0 {
		return uint16(e)
	}
	return fs.nodeLPM(e&^nodeBit, a)
}

// entry is a's top-level entry, loaded atomically: updateFast may store it
// in place.
func (fs *fsnap) entry(a uint32) uint32 {
	return atomic.LoadUint32(&fs.chunks[fs.top[a>>24]<<8|a>>16&255])
}

// chunk returns chunk hi, for reading.
func (fs *fsnap) chunk(hi uint32) *[256]uint32 {
	return (*[256]uint32)(fs.chunks[fs.top[hi]<<8:])
}

// topOf is structure s's top level.
func (fs *fsnap) topOf(s int) *[256]uint32 {
	if s == 0 {
		return &fs.top
	}
	return &fs.more[s-1]
}

// nodeLen is the length in words of the node nd starts with, padded.
func nodeLen(nd []uint64) int {
	n := nodeVals + (ones((*[4]uint64)(nd[:4]))+3)/4
	if nd[nodeHdr]&hdrKids != 0 {
		n += 5
	}
	return (n + 7) &^ 7
}

// arenaBytes is the size of the node and child block arenas in use, live or
// garbage.
func (fs *fsnap) arenaBytes() int { return 8*len(fs.nodes) + 2*len(fs.kids) }

// bytes is the size of the lookup structure (arenas by length, top level
// and the answers).
func (fs *fsnap) bytes() int {
	return 4*len(fs.top)*(1+len(fs.more)) + 4*len(fs.chunks) + 8*len(fs.nodes) + 2*len(fs.kids) + 32*len(fs.ans) + int(unsafe.Sizeof(Result{}))*len(fs.inRes)
}
