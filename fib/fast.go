package fib

import (
	"math/bits"
	"slices"
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
// Updates never write where readers look: a changed /16 block is rebuilt
// from the tries and appended to the node arena, where no published entry
// points yet (readers index the arenas up to their capacity). A batch that changed that one block then stores its top entry
// in place, atomically (updateFast); a larger one copies the chunks it
// changes into the chunk arena and publishes a new snapshot with one
// atomic store. The arenas keep room to grow; the garbage left in them is
// reclaimed once it outgrows the live data by copying the live nodes into
// fresh arenas (compact), and the answers updates leave behind by a full
// rebuild, more rarely.

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

// fastWriter is the writers' state of the merged structure.
type fastWriter struct {
	epoch uint32 // answers cached in leaves are valid for this epoch
	live  int    // bytes right after the last full build or compaction
	nAns  int    // answers right after the last full build
	// rebuilds and compactions count the full builds and compactions.
	rebuilds, compactions int
	slack                 int // garbage allowed besides live bytes; 0: 1 MB

	cur  fsnap  // the snapshot as writers see it: arenas past the readers' ends
	next *fsnap // the snapshot being built by a commit
	own  [256]bool
	blks [][256]uint16 // scratch: a node's child blocks
	// made remembers what each deep block's node was built from: when the
	// tries below /16 are the same nodes, only the node's def changes.
	made []blockSrc
	// plan is which tables each structure merges; own and made above are
	// structure 0's, and those of structure s are in others[s-1] but while
	// selectStruct has swapped them in.
	plan   fastPlan
	others []structState
	cursor int // the structure swapped in
	// The answers of the snapshot being built: by key, and what to
	// recompute them from when the ports change; ps is the ports they
	// are computed against.
	ansIdx map[ansKey]uint32
	srcs   []ansSrc
	ps     *portSnap
	dirty  dirtySet // between batches: the empty set whose bitmap they reuse
}

// structState is a structure's writer state besides structure 0's.
type structState struct {
	top  [256]uint32 // swapped with fsnap.top (see selectStruct)
	own  [256]bool
	made []blockSrc
}

type blockSrc struct {
	n2    [maxMerge]*node
	stamp [maxMerge]uint64 // of each n2: no change published below it since
	last  int8
	epoch uint32
}

// code returns the value of l in the snapshot being built: its first
// route's answer, valNone for no prefix.
func (w *fastWriter) code(l *leaf) uint16 {
	if l == nil {
		return valNone
	}
	if l.aepoch != w.epoch {
		l.aepoch = w.epoch
		l.ans = w.answerOf(l.routes[0])
	}
	if l.ans >= valKid {
		return valSlow
	}
	return uint16(l.ans)
}

// topCode is code for a top entry or a node's def, where no prefix is
// answer 0.
func (w *fastWriter) topCode(l *leaf) uint16 {
	if l == nil {
		return 0
	}
	return w.code(l)
}

// prefixCodes returns the values of p's prefixes (the code of each leaf).
// They are kept in the part for the epoch, and a change marks only its
// prefix valUnknown: an update rebuilds a whole /16 block from the parts
// under it, and reading every leaf there again would be a cache miss each.
func (w *fastWriter) prefixCodes(p *part) []uint16 {
	if len(p.pkey) == 0 {
		return nil // (and the shared empty part stays untouched)
	}
	if p.pepoch != w.epoch || len(p.pcode) != len(p.pkey) {
		pc := make([]uint16, len(p.pkey))
		for j, l := range p.pfx {
			pc[j] = w.code(l)
		}
		p.pcode, p.pepoch = pc, w.epoch
		return pc
	}
	pc := p.pcode
	for j, c := range pc {
		if c == valUnknown {
			pc[j] = w.code(p.pfx[j])
		}
	}
	return pc
}

// expand writes the values of the prefixes of p (a part at depth) over
// out, valNone where it has none: shorter prefixes first, so that longer
// ones overwrite. It reads the packed keys, not the leaves.
func (w *fastWriter) expand(p *part, depth int, out *[256]uint16) {
	fillNone(out)
	pc := w.prefixCodes(p)
	for j, k := range p.pkey {
		ll := int(k>>32) - 8*depth
		start := int(slotOf(uint32(k), depth))
		c := pc[j]
		for i, end := start, start+1<<(8-ll); i < end; i++ {
			out[i] = c
		}
	}
}

// under writes src over the slots of dst that hold valNone, def where src
// holds valNone too.
func under(dst, src *[256]uint16, def uint16) {
	for i := range dst {
		if dst[i] == valNone {
			v := src[i]
			if v == valNone {
				v = def
			}
			dst[i] = v
		}
	}
}

// makeNode appends a node for the 256 values v (child slots hold valKid),
// its def and its children, and returns its offset.
func (w *fastWriter) makeNode(v *[256]uint16, def uint16, cbits *[4]uint64, cbase uint32) uint32 {
	fs := w.next
	var lbits [4]uint64
	var runs [256]uint16
	nr := 0
	for i := 0; i < 256; i++ {
		if i == 0 || v[i] != v[i-1] {
			lbits[i>>6] |= 1 << (i & 63)
			runs[nr] = v[i]
			nr++
		}
	}
	kids := *cbits != [4]uint64{}
	ko := nodeVals + (nr+3)/4
	n := ko
	if kids {
		n += 5
	}
	o := len(fs.nodes)
	fs.nodes = append(fs.nodes, zeroWords[:(n+7)&^7]...)
	nd := fs.nodes[o:]
	copy(nd, lbits[:])
	l1 := bits.OnesCount64(lbits[0])
	l2 := l1 + bits.OnesCount64(lbits[1])
	l3 := l2 + bits.OnesCount64(lbits[2])
	nd[nodeHdr] = uint64(def) | uint64(l1)<<24 | uint64(l2)<<32 | uint64(l3)<<40
	if kids {
		nd[nodeHdr] |= hdrKids | uint64(ko)<<48
		copy(nd[ko:], cbits[:])
		nd[ko+4] = uint64(cbase)
	}
	for j := 0; j < nr; j++ {
		nd[nodeVals+j>>2] |= uint64(runs[j]) << (j & 3 * 16)
	}
	return uint32(o)
}

// block computes the top entry of /16 block b from the roots of the tables
// the structure merges (in rule order; nil for a missing or empty table),
// appending nodes.
func (w *fastWriter) block(roots *mergeRoots, b, old uint32) uint32 {
	var base [maxMerge]*leaf
	var n2 [maxMerge]*node
	var p2 [maxMerge]*part
	deep := false
	s0, s1 := uint(b>>8), uint(b&255)
	last := maxMerge - 1
	for t, r := range roots {
		if r == nil {
			continue
		}
		l := r.at(s0)
		if n1 := r.kid(s0); n1 != nil {
			p1 := n1.p.Load()
			if x := p1.at(s1); x != nil {
				l = x
			}
			if n2[t] = p1.kid(s1); n2[t] != nil {
				p2[t] = n2[t].p.Load()
				deep = true
			}
		}
		base[t] = l
		if l != nil {
			// This table covers the whole block: it hides the later ones.
			last = t
			break
		}
	}
	if !deep {
		for t := 0; t <= last; t++ {
			if base[t] != nil {
				return uint32(w.topCode(base[t]))
			}
		}
		return 0
	}
	def := w.topCode(base[last])
	if w.made == nil {
		w.made = make([]blockSrc, 1<<16)
	}
	fs := w.next
	src := blockSrc{n2: n2, last: int8(last), epoch: w.epoch}
	for t, n := range n2 {
		if n != nil {
			src.stamp[t] = n.stamp
		}
	}
	if old&nodeBit != 0 && w.made[b] == src {
		o := old &^ nodeBit
		if uint16(fs.nodes[o+nodeHdr]) == def {
			return old
		}
		no := len(fs.nodes)
		fs.nodes = append(fs.nodes, fs.nodes[o:int(o)+nodeLen(fs.nodes[o:])]...)
		fs.nodes[no+nodeHdr] = fs.nodes[no+nodeHdr]&^0xffff | uint64(def)
		return nodeBit | uint32(no)
	}
	w.made[b] = src
	// Below, only prefixes longer than /16: base[last] is the node's def.
	var e2 [maxMerge][256]uint16 // each table's /17../24 over the block
	var v1 [256]uint16
	fillNone(&v1)
	for t := 0; t <= last; t++ {
		if p2[t] != nil {
			w.expand(p2[t], 2, &e2[t])
			under(&v1, &e2[t], valNone)
		}
	}
	var cbits [4]uint64
	for t := 0; t <= last; t++ {
		if p := p2[t]; p != nil {
			for i := range cbits {
				cbits[i] |= p.kbits[i]
			}
		}
	}
	w.blks = w.blks[:0]
	if cbits != [4]uint64{} {
		var out [4]uint64
		var e3, blk [256]uint16
		for i := 0; i < 256; i++ {
			if cbits[i>>6]&(1<<(i&63)) == 0 {
				continue
			}
			// The merged /24: each table's /25../32 there, over what the
			// /24 level gives (which already merges the tables' shorter
			// prefixes in priority order).
			fillNone(&blk)
			for t := 0; t <= last; t++ {
				if p := p2[t]; p != nil {
					if k := p.kid(uint(i)); k != nil {
						w.expand(k.p.Load(), 3, &e3)
					} else {
						fillNone(&e3)
					}
					under(&blk, &e3, e2[t][i])
				}
			}
			same := true
			for j := range blk {
				same = same && blk[j] == blk[0]
			}
			if same {
				v1[i] = blk[0]
				continue
			}
			out[i>>6] |= 1 << (i & 63)
			w.blks = append(w.blks, blk)
		}
		cbits = out
		for i := 0; i < 256; i++ {
			if cbits[i>>6]&(1<<(i&63)) != 0 {
				v1[i] = valKid
			}
		}
	}
	cbase := uint32(len(fs.kids) >> 8)
	for i := range w.blks {
		fs.kids = append(fs.kids, w.blks[i][:]...)
	}
	return nodeBit | w.makeNode(&v1, def, &cbits, cbase)
}

func fillNone(v *[256]uint16) {
	for i := range v {
		v[i] = valNone
	}
}

// maxMerge is the most tables one structure merges.
const maxMerge = 4

// mergeRoots are the root parts of the tables a structure merges.
type mergeRoots [maxMerge]*part

// fastRoots returns the root parts structure s is built from.
func (f *FIB) fastRoots(s int, roots *mergeRoots) {
	*roots = mergeRoots{}
	for i, id := range f.fw.plan.tables(s) {
		if t, ok := f.tables[id]; ok {
			if r := t.root.Load().p.Load(); !r.empty() {
				roots[i] = r
			}
		}
	}
}

// chunk computes the 256 top entries of chunk hi into out; when no table
// has a prefix longer than /8 there, they are all the same.
func (w *fastWriter) chunk(roots *mergeRoots, hi uint32, old, out *[256]uint32) {
	deep := false
	var v uint32
	for _, r := range roots {
		if r == nil {
			continue
		}
		if r.kid(uint(hi)) != nil {
			deep = true
		}
		if l := r.at(uint(hi)); l != nil {
			v = uint32(w.topCode(l))
			break
		}
	}
	if !deep {
		for i := range out {
			out[i] = v
		}
		return
	}
	for lo := uint32(0); lo < 256; lo++ {
		out[lo] = w.block(roots, hi<<8|lo, old[lo])
	}
}

// setChunk publishes out as chunk hi of the snapshot being built, keeping
// the old chunk when nothing changed; fresh says there is none yet.
func (w *fastWriter) setChunk(hi uint32, out *[256]uint32, fresh bool) {
	fs := w.next
	if !fresh && *fs.chunk(hi) == *out {
		return
	}
	w.ownChunk(hi, fresh)
	*fs.chunk(hi) = *out
}

// ownChunk gives chunk hi a copy of its own in the snapshot being built,
// which it changes in place from then on.
func (w *fastWriter) ownChunk(hi uint32, fresh bool) {
	fs := w.next
	if w.own[hi] {
		return
	}
	i := len(fs.chunks) >> 8
	if fresh {
		fs.chunks = append(fs.chunks, zeroChunk[:]...)
	} else {
		fs.chunks = append(fs.chunks, fs.chunk(hi)[:]...)
	}
	fs.top[hi] = uint32(i)
	w.own[hi] = true
}

// rebuildFast builds the merged structure from scratch and publishes it.
func (f *FIB) rebuildFast() {
	w := &f.fw
	w.epoch++
	fs := &fsnap{}
	fs.nodes = append(fs.nodes, zeroWords[:8]...) // node 0: a dummy, no node's offset
	w.plan = f.planFast()
	fs.chunks = make([]uint32, 0, 256*256*(1+len(w.plan.per)))
	fs.ans = append(fs.ans, fixedAnswers[:]...) // answer 0: no route
	fs.syncResults()
	w.ansIdx, w.srcs = nil, nil
	w.ps = f.portSnap.Load()
	w.next = fs
	fs.more = make([][256]uint32, len(w.plan.per))
	fs.prog = w.plan.prog
	w.others = make([]structState, len(w.plan.per))
	w.made = nil
	for st := 0; st <= len(w.plan.per); st++ {
		w.selectStruct(st)
		w.own = [256]bool{}
		var roots mergeRoots
		f.fastRoots(st, &roots)
		var out [256]uint32
		for hi := uint32(0); hi < 256; hi++ {
			w.chunk(&roots, hi, &zeroChunk, &out)
			w.setChunk(hi, &out, true)
		}
	}
	w.selectStruct(0)
	w.next, w.ps = nil, nil
	fs.roomy()
	w.live = fs.arenaBytes()
	w.nAns = len(fs.ans)
	w.rebuilds++
	w.cur = *fs
	w.cur.more = slices.Clone(fs.more)
	f.fast.Store(fs)
}

// selectStruct makes structure s the one the writer's code builds: its top
// level in next's top, its writer state in own and made.
func (w *fastWriter) selectStruct(s int) {
	if s == w.cursor {
		return
	}
	fs := w.next
	for _, x := range [2]int{w.cursor, s} {
		if x == 0 {
			continue
		}
		o := &w.others[x-1]
		fs.top, fs.more[x-1] = fs.more[x-1], fs.top
		w.own, o.own = o.own, w.own
		w.made, o.made = o.made, w.made
	}
	w.cursor = s
}

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

// The arenas' room: chunk copies (1 KB each, one per chunk a batch changes),
// and for the node and child block garbage about what the compaction rule
// lets accumulate.
const chunkRoom = 4096

func nodeRoom(words int) int { return words + 128<<10 }
func kidRoom(vals int) int   { return vals + 256<<8 }

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
	pub := f.fast.Load()
	w := &f.fw
	fs := &w.cur
	if pub == nil || d.n > 4096 || d.nchunks == 256 || len(fs.ans) > 2*w.nAns+4096 {
		f.rebuildFast()
		return
	}
	slack := w.slack
	if slack == 0 {
		slack = 1 << 20
	}
	needN := maxNodeLen * (256*d.nchunks + len(d.list))
	if fs.arenaBytes() > 2*w.live+slack || cap(fs.nodes)-len(fs.nodes) < needN {
		*fs = *fs.compact()
		w.live = fs.arenaBytes()
		w.compactions++
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
		if d.chunks[hi>>6]&(1<<(hi&63)) != 0 {
			w.chunk(roots, hi, fs.chunk(hi), &out)
			w.setChunk(hi, &out, false)
		}
	}
	for _, b := range d.list {
		hi, lo := b>>8, b&255
		if d.chunks[hi>>6]&(1<<(hi&63)) != 0 {
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
func (fs *fsnap) compact() *fsnap {
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
	c.nodes = make([]uint64, 0, words+nodeRoom(words))
	c.nodes = append(c.nodes, zeroWords[:8]...)
	c.kids = make([]uint16, 0, blocks<<8+kidRoom(blocks<<8))
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

// dirtySet is what a batch changed in local, main or default: whole
// chunks (/8) for prefixes up to /8, /16 blocks for longer ones.
type dirtySet struct {
	chunks  [4]uint64
	nchunks int
	bm      []uint64
	list    []uint32
	n       int
}

func (d *dirtySet) mark(key uint32, plen uint8) {
	if plen <= 8 {
		lo := key >> 24
		hi := lo + 1<<(8-plen) - 1
		for c := lo; c <= hi; c++ {
			if d.chunks[c>>6]&(1<<(c&63)) == 0 {
				d.chunks[c>>6] |= 1 << (c & 63)
				d.nchunks++
			}
		}
		return
	}
	if d.bm == nil {
		d.bm = make([]uint64, 1<<16/64)
	}
	lo := key >> 16
	hi := lo
	if plen < 16 {
		hi = lo + 1<<(16-plen) - 1
	}
	for b := lo; b <= hi; b++ {
		if d.bm[b>>6]&(1<<(b&63)) == 0 {
			d.bm[b>>6] |= 1 << (b & 63)
			d.list = append(d.list, b)
			d.n++
		}
	}
}

// reset empties d, keeping its bitmap (8 KB) for the next batch.
func (d *dirtySet) reset() {
	for _, b := range d.list {
		d.bm[b>>6] &^= 1 << (b & 63)
	}
	*d = dirtySet{bm: d.bm, list: d.list[:0]}
}

func (d *dirtySet) markAll() {
	d.chunks = [4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	d.nchunks = 256
}

func (d *dirtySet) any() bool { return d.nchunks > 0 || d.n > 0 }

// LookupBulk is Lookup for many keys (res must be at least as long as
// keys), for the forwarding path: the lookups go through the merged
// structure bulkN at a time, level by level, so that their cache misses
// overlap (with policy rules, through the rules one by one), and most end
// with their answer, whose Result has no Route (the rest take the rule
// walk and have it). Lock-free, no allocation.
func (f *FIB) LookupBulk(keys []Key, res []Result) {
	res = res[:len(keys)]
	var refs [bulkN]*Result
	for off := 0; off < len(keys); off += bulkN {
		ks := keys[off:]
		if len(ks) > bulkN {
			ks = ks[:bulkN]
		}
		rs := res[off : off+len(ks)]
		f.LookupBulkRefs(ks, refs[:len(ks)], rs)
		for i, r := range refs[:len(ks)] {
			if r != &rs[i] {
				rs[i] = *r
			}
		}
	}
}

// InputView is one published state of the lookup structures, for a pass
// of input lookups (no output port, no mark) that goes by address first:
// Vals walks the merged structure for the destinations (KeyVal, with
// policy rules, each packet's key through them), then Result gives each
// one's shared Result where the value alone answers, and Lookup the rest
// with full keys. Taken once a pass, so that every value is read against
// the snapshot it came from. Lock-free, no allocation.
type InputView struct {
	fs *fsnap
	f  *FIB
}

// InputView pins the current state.
func (f *FIB) InputView() InputView {
	return InputView{fs: f.fast.Load(), f: f}
}

// Rules reports whether policy rules other than the default ones are in
// play: some values then come from KeyVal (NeedsKey).
func (v *InputView) Rules() bool { return v.fs.prog != nil }

// Vals puts in vals[i] the merged structure's value for dsts[i] (vals at
// least as long), bulkN at a time so that their cache misses overlap.
// With policy rules these are the values of packets that no rule with a
// selector matches; NeedsKey tells the others, whose value KeyVal gives.
func (v *InputView) Vals(dsts []uint32, vals []uint16) {
	vals = vals[:len(dsts)]
	p := v.fs.prog
	if p != nil && p.walk {
		for i := range vals {
			vals[i] = valSlow
		}
		return
	}
	for off := 0; off < len(dsts); off += bulkN {
		end := min(off+bulkN, len(dsts))
		v.fs.lpmBulk(dsts[off:end], vals[off:end])
	}
	if p != nil && p.uMiss != ansNoRoute {
		for i, x := range vals {
			if x == ansNoRoute {
				vals[i] = p.uMiss
			}
		}
	}
}

// NeedsKey reports whether the value of k is not its destination's from
// Vals: some policy rule with a selector matches it.
func (v *InputView) NeedsKey(k *Key) bool {
	p := v.fs.prog
	return p != nil && (p.walk || p.anyCond(k))
}

// MayNeedKey is NeedsKey's quick test on addresses: false when no policy
// rule with a selector can match a packet from src to dst.
func (v *InputView) MayNeedKey(src, dst uint32) bool {
	p := v.fs.prog
	return p != nil && p.mayCond(src, dst)
}

// KeyVal is the value of an input key through the policy rules (ruleVal),
// or through the merged structure without them.
func (v *InputView) KeyVal(k *Key) uint16 { return v.fs.val(k) }

// Val is Vals for one destination, without a key: valSlow with policy
// rules, where the destination alone does not tell.
func (v *InputView) Val(dst uint32) uint16 {
	if v.fs.prog != nil {
		return valSlow
	}
	return v.fs.lpm(dst)
}

// Result is the shared, read-only Result for a destination whose value is
// val, or nil where a full key is needed (Lookup): special addresses,
// multipath routes (their hash) and what the structure leaves to the rule
// walk.
func (v *InputView) Result(val uint16, dst, src uint32) *Result {
	if Special(dst, src) {
		return nil
	}
	return v.Shared(val)
}

// Shared is the Result that Result gives for val to every address that is
// not Special, or nil: one Result for all of them.
//
// A value past the snapshot's answers comes from an entry a later single
// change stored in place (updateFast) with an answer this snapshot
// predates: it is left to the full lookup too.
func (v *InputView) Shared(val uint16) *Result {
	if int(val) >= len(v.fs.inRes) || v.fs.ans[val].flags != 0 {
		return nil
	}
	return &v.fs.inRes[val]
}

// Lookup is the input lookup of k, whose value (Vals, KeyVal) is val: a
// shared Result or spill, filled.
func (v *InputView) Lookup(k *Key, val uint16, spill *Result) *Result {
	f := v.f
	if inputMaybeSpecial(k) && inputSpecial(k, f.portSnap.Load(), spill) {
		return spill
	}
	if int(val) < len(v.fs.inRes) {
		if j, ok := v.fs.ansAt(uint32(val), k); ok && int(j) < len(v.fs.inRes) {
			return &v.fs.inRes[j]
		}
	}
	f.lookupWalk(k, spill)
	return spill
}

// LookupBulkRefs is LookupBulk without copying Results: out[i] points at a
// Result shared by all keys with the same answer (read-only, no Route), or
// at spill[i], which the rule walk filled (out and spill must be at least
// as long as keys). Lock-free, no allocation.
func (f *FIB) LookupBulkRefs(keys []Key, out []*Result, spill []Result) {
	out, spill = out[:len(keys)], spill[:len(keys)]
	v := f.InputView()
	var dsts [bulkN]uint32
	var vals [bulkN]uint16
	for off := 0; off < len(keys); off += bulkN {
		ks := keys[off:min(off+bulkN, len(keys))]
		for i := range ks {
			dsts[i] = ks[i].Dst
		}
		v.Vals(dsts[:len(ks)], vals[:len(ks)])
		if v.Rules() {
			for i := range ks {
				if v.NeedsKey(&ks[i]) {
					vals[i] = v.KeyVal(&ks[i])
				}
			}
		}
		for i := range ks {
			out[off+i] = v.Lookup(&ks[i], vals[i], &spill[off+i])
		}
	}
}

// LookupBytes is the memory of the data plane's lookup structure now.
func (f *FIB) LookupBytes() int { return f.fast.Load().bytes() }
