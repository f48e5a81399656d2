package fib

import (
	"math/bits"
	"slices"
	"time"
)

// fastWriter is the writers' state of the merged structure.
type fastWriter struct {
	epoch uint32 // answers cached in nexthops are valid for this epoch
	live  int    // bytes right after the last full build or compaction
	// The arenas' lengths after the last full build: the next one's size.
	builtNodes, builtKids int
	nAns                  int // answers right after the last full build
	// rebuilds and compactions count the full builds and compactions.
	rebuilds, compactions int
	// scale multiplies the arenas' room and the garbage allowed, doubled
	// by compactions in quick succession; compacted is the last one.
	scale     int
	compacted time.Time
	slack     int // garbage allowed besides live bytes; 0: 1 MB

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
	// pending are the blocks marked slow whose builds wait (fastdefer.go),
	// since pendingSince, last added to at lastDefer; timer builds them
	// when changes pause. buildTook is how long the last such build took.
	pending                 dirtySet
	pendingSince, lastDefer time.Time
	buildTook               time.Duration
	timer                   *time.Timer
	hot                     dirtySet      // scratch: the blocks deferFast builds at once
	deferOff                bool          // tests of the builds without deferral
	quiet, minAge           time.Duration // tests: deferQuiet, deferMin if not 0
	memo                    [1024]ansMemo
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
	a := w.answerOf(l.route(0))
	if a >= valKid {
		return valSlow
	}
	return uint16(a)
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
	return w.appendNode(&lbits, runs[:nr], def, cbits, cbase)
}

// onlyPart returns the one part of the tables up to last that has
// prefixes longer than /16 in a block, when it has none longer than /24;
// nil when several tables have such prefixes, or children.
func onlyPart(p2 *[maxMerge]*part, last int) *part {
	var only *part
	for t := 0; t <= last; t++ {
		if p := p2[t]; p != nil {
			if only != nil || p.kbits != [4]uint64{} {
				return nil
			}
			only = p
		}
	}
	return only
}

// partNode appends the node of a block whose values are those of one part
// alone (onlyPart). The part's runs already say where the prefix in
// effect changes: the node's runs are those, with neighbours of equal
// value merged. It is the node makeNode makes from the 256 slots
// expanded, in a fraction of the time, and most blocks of a full table
// are such.
func (w *fastWriter) partNode(p *part, def uint16) uint32 {
	pc := w.prefixCodes(p)
	var lbits [4]uint64
	var runs [256]uint16
	nr, j := 0, 0
	prev := uint32(1 << 16) // no value: slot 0 starts a run
	for wd, m := range p.lbits {
		for ; m != 0; m &= m - 1 {
			v := uint16(valNone)
			if x := p.runs[j]; x != noPfx {
				v = pc[x]
			}
			j++
			if uint32(v) != prev {
				lbits[wd] |= 1 << bits.TrailingZeros64(m)
				runs[nr] = v
				nr++
				prev = uint32(v)
			}
		}
	}
	return w.appendNode(&lbits, runs[:nr], def, &[4]uint64{}, 0)
}

// appendNode appends a node of runs starting where lbits says, with def
// and children, and returns its offset.
func (w *fastWriter) appendNode(lbits *[4]uint64, runs []uint16, def uint16, cbits *[4]uint64, cbase uint32) uint32 {
	fs := w.next
	nr := len(runs)
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
	if p := onlyPart(&p2, last); p != nil {
		return nodeBit | w.partNode(p, def)
	}
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
func (f *FIB) rebuildFast() { f.rebuild(false) }

// rebuild builds the structures from scratch and publishes them. With
// keepAnswers, the answer table and the prefixes' values cached in the
// trie parts stay (a build of deferred blocks: nothing but the tries
// changed); without, they are made anew, which drops answers no route
// uses any more. The arenas are sized from the last build's, so that a
// full table's build does not copy them as they grow.
func (f *FIB) rebuild(keepAnswers bool) {
	w := &f.fw
	w.pending.reset()
	fs := &fsnap{}
	if keepAnswers {
		fs.ans, fs.inRes = w.cur.ans, w.cur.inRes
	} else {
		w.epoch++
		fs.ans = append(fs.ans, fixedAnswers[:]...) // answer 0: no route
		fs.syncResults()
		w.ansIdx, w.srcs = nil, nil
	}
	w.plan = f.planFast()
	fs.chunks = make([]uint32, 0, (256*(1+len(w.plan.per))+chunkRoom)<<8)
	fs.nodes = make([]uint64, 0, w.builtNodes+nodeRoom(w.builtNodes))
	fs.nodes = append(fs.nodes, zeroWords[:8]...) // node 0: a dummy, no node's offset
	fs.kids = make([]uint16, 0, w.builtKids+kidRoom(w.builtKids))
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
	w.builtNodes, w.builtKids = len(fs.nodes), len(fs.kids)
	fs.roomy()
	w.live = fs.arenaBytes()
	if !keepAnswers {
		w.nAns = len(fs.ans)
	}
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
