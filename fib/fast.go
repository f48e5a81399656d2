package fib

import "math/bits"

// The fast path: with only the default rules, the kernel (since 4.1) looks
// up the local and main tables as one merged trie. Here one read-only
// structure, fsnap, answers for local, main and default together: for every
// address it names the longest prefix of the first of those tables that has
// one covering the address (local wins over main, main over default, as the
// rules order them), with that prefix's first route and the index of its
// precomputed answer (answer.go). When the answer fits the key, it is the
// Result the rule walk would give, and the lookup never touches the route;
// otherwise (a TOS route, a dead nexthop, a throw, an output port) the
// lookup goes to matchRoute and the exact rule walk over the per-table
// tries, which stay the writers' authoritative structure.
//
// Layout (DIR-16-8-8 with compressed lower levels, in the spirit of
// poptrie): a directly indexed top level of 2^16 uint32 entries, cut into
// 256 chunks of 256 so a change copies 1 KB instead of 256 KB. An entry is
// either a prefix id (pid, 0: none; info maps it to the prefix) or, with
// nodeBit, the index of a node for the 16..24 bits. A node is one cache
// line: a 256-bit bitmap of where runs of equal leaf-pushed values start,
// the runs' values ({route, answer index}, 16 bytes) in a flat arena, and
// for the few nodes with children (the last 8 bits, stored contiguously) the
// index of their 256-bit child bitmap in a side arena. A typical lookup
// loads a top entry (the top level is 256 KB, mostly cached), a node, a
// value and its answer (the answer table is small and hot).
//
// Updates copy on write: a changed /16 block is rebuilt from the tries and
// appended to the arenas (readers of older snapshots hold the older slice
// headers and never read past them), its chunk copied, and the snapshot
// published with one atomic store. The garbage left in the arenas is
// reclaimed once it outgrows the live data by copying the live nodes and
// values into fresh arenas (compact), and the prefix ids and answers that
// updates leave behind by a full rebuild, more rarely.

const nodeBit = 1 << 31

var zeroChunk [256]uint32

// fnode is one cache line: the child bitmap, which few nodes need, is in
// a separate arena.
type fnode struct {
	lbits [4]uint64 // slot starts a new run of values
	lbase uint32    // index of the first run's value in vals
	def   uint32    // pid where the runs hold none: the block's prefix up to /16
	cbase uint32    // index of the first child in nodes
	kids  uint32    // index of the child bitmap in cbits; 0: no children
	lpre  [4]uint16 // runs starting in the words before each word of lbits
	_     [8]byte
}

type fsnap struct {
	top   [256]*[256]uint32
	nodes []fnode
	cbits [][4]uint64 // child bitmaps (slot has a child node); 0 unused
	vals  []pinfo     // the runs' prefixes ({} where none: the node's def)
	info  []pinfo     // pid -> the prefix's first route and its answer
	ans   []answer    // see answer.go
}

// rank counts the set bits of bm below slot c.
func rank(bm *[4]uint64, c uint32) uint32 {
	w, b := c>>6&3, c&63
	r := uint32(bits.OnesCount64(bm[w] & (1<<b - 1)))
	for i := uint32(0); i < w; i++ {
		r += uint32(bits.OnesCount64(bm[i]))
	}
	return r
}

// val returns the index in vals of the run holding slot c: no loop over
// the words before c's (whose count would be a mispredicted branch).
func (n *fnode) val(c uint32) uint32 {
	w, b := c>>6&3, c&63
	return n.lbase + uint32(n.lpre[w]) + uint32(bits.OnesCount64(n.lbits[w]&(2<<b-1))) - 1
}

// lpm returns the prefix for a: its first route and answer; the zero
// pinfo (pid 0) when no table covers a.
func (fs *fsnap) lpm(a uint32) pinfo {
	e := fs.top[a>>24][a>>16&255]
	if e&nodeBit == 0 {
		return fs.info[e]
	}
	n := &fs.nodes[e&^nodeBit]
	def := n.def
	c := a >> 8 & 255
	if n.kids != 0 {
		if cb := &fs.cbits[n.kids]; cb[c>>6]&(1<<(c&63)) != 0 {
			n = &fs.nodes[n.cbase+rank(cb, c)]
			c = a & 255
		}
	}
	if v := fs.vals[n.val(c)]; v.route != nil {
		return v
	}
	return fs.info[def]
}

// bytes is the size of the lookup structure (arenas by length, top level
// and the pid table).
func (fs *fsnap) bytes() int {
	return topBytes + 64*len(fs.nodes) + 32*len(fs.cbits) + 16*len(fs.vals) + 16*len(fs.info) + 32*len(fs.ans)
}

// topBytes is the size of the top level with all its chunks.
const topBytes = 256 * (8 + 1024)

// fastWriter is the writers' state of the merged structure.
type fastWriter struct {
	epoch uint32 // pids of leaves are valid for this epoch
	live  int    // bytes right after the last full build or compaction
	// nInfo and nAns are the pids and answers right after the last full
	// build.
	nInfo, nAns int
	// rebuilds and compactions count the full builds and compactions.
	rebuilds, compactions int
	slack                 int // garbage allowed besides live bytes; 0: 1 MB

	next *fsnap // the snapshot being built by a commit
	own  [256]bool
	kids []fnode // scratch
	// made remembers what each deep block's node was built from: when the
	// tries below /16 are the same nodes, only the node's def changes.
	made []blockSrc
	// The answers of the snapshot being built: by key, and what to
	// recompute them from when the ports change; ps is the ports they
	// are computed against.
	ansIdx map[ansKey]uint32
	srcs   []ansSrc
	ps     *portSnap
}

type blockSrc struct {
	n2    [3]*node
	last  int8
	epoch uint32
}

// pid returns the id of l in the snapshot being built, giving it one.
func (w *fastWriter) pid(l *leaf) uint32 {
	if l == nil {
		return 0
	}
	if l.pepoch != w.epoch {
		l.pepoch = w.epoch
		l.pid = uint32(len(w.next.info))
		r := l.routes[0]
		w.next.info = append(w.next.info, pinfo{route: r, ans: w.answerOf(r)})
	}
	return l.pid
}

// val returns the value of l in the runs of the snapshot being built.
func (w *fastWriter) val(l *leaf) pinfo {
	if l == nil {
		return pinfo{}
	}
	r := l.routes[0]
	if l.aepoch != w.epoch {
		l.aepoch = w.epoch
		l.ans = w.answerOf(r)
	}
	return pinfo{route: r, ans: l.ans}
}

// at returns the leaf of n's own prefixes at slot c (nil if none).
func (n *node) at(c uint) *leaf {
	w, b := c>>6&3, c&63
	return n.leaves[int(n.lbase[w])+bits.OnesCount64(n.lbits[w]&(2<<b-1))-1]
}

// expand writes n's own prefixes over 256 slots where out holds nil, def
// where n has none.
func (w *fastWriter) expand(n *node, out *[256]*leaf, def *leaf) {
	if n == nil {
		if def != nil {
			for i := range out {
				if out[i] == nil {
					out[i] = def
				}
			}
		}
		return
	}
	ri := -1
	var cur *leaf
	for i := 0; i < 256; i++ {
		if n.lbits[i>>6]&(1<<(i&63)) != 0 {
			ri++
			cur = def
			if l := n.leaves[ri]; l != nil {
				cur = l
			}
		}
		if out[i] == nil {
			out[i] = cur
		}
	}
}

// makeNode compresses 256 values (child slots hold their left neighbour's
// value) into runs appended to the arena.
func (w *fastWriter) makeNode(v *[256]*leaf, cbits [4]uint64, cbase uint32) fnode {
	fs := w.next
	n := fnode{cbase: cbase, lbase: uint32(len(fs.vals))}
	if cbits != [4]uint64{} {
		n.kids = uint32(len(fs.cbits))
		fs.cbits = append(fs.cbits, cbits)
	}
	for i := 0; i < 256; i++ {
		if i == 0 || v[i] != v[i-1] {
			n.lbits[i>>6] |= 1 << (i & 63)
			fs.vals = append(fs.vals, w.val(v[i]))
		}
	}
	for i := 1; i < 4; i++ {
		n.lpre[i] = n.lpre[i-1] + uint16(bits.OnesCount64(n.lbits[i-1]))
	}
	return n
}

// block computes the top entry of /16 block b from the three tables' roots
// (local, main, default; nil for a missing or empty table), appending
// nodes.
func (w *fastWriter) block(roots *[3]*node, b, old uint32) uint32 {
	var base [3]*leaf
	var n2 [3]*node
	deep := false
	s0, s1 := uint(b>>8), uint(b&255)
	last := 2
	for t, r := range roots {
		if r == nil {
			continue
		}
		l := r.at(s0)
		if n1 := r.kid(s0); n1 != nil {
			if x := n1.at(s1); x != nil {
				l = x
			}
			if n2[t] = n1.kid(s1); n2[t] != nil {
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
				return w.pid(base[t])
			}
		}
		return 0
	}
	def := w.pid(base[last])
	if w.made == nil {
		w.made = make([]blockSrc, 1<<16)
	}
	src := blockSrc{n2: n2, last: int8(last), epoch: w.epoch}
	if old != 0 && old&nodeBit != 0 && w.made[b] == src {
		n := w.next.nodes[old&^nodeBit]
		if n.def == def {
			return old
		}
		n.def = def
		w.next.nodes = append(w.next.nodes, n)
		return nodeBit | uint32(len(w.next.nodes)-1)
	}
	w.made[b] = src
	// Below, only prefixes longer than /16: base[last] is the node's def.
	var v1 [256]*leaf
	for t := 0; t <= last; t++ {
		w.expand(n2[t], &v1, nil)
	}
	var cbits [4]uint64
	w.kids = w.kids[:0]
	for t := 0; t <= last; t++ {
		n := n2[t]
		if n == nil || n.kbits == [4]uint64{} {
			continue
		}
		for i := uint(0); i < 256; i++ {
			if n.kbits[i>>6]&(1<<(i&63)) != 0 {
				cbits[i>>6] |= 1 << (i & 63)
			}
		}
	}
	if cbits != [4]uint64{} {
		var v2 [256]*leaf
		var out [4]uint64
		for i := 0; i < 256; i++ {
			if cbits[i>>6]&(1<<(i&63)) == 0 {
				continue
			}
			// The merged /24: each table's /25../32 there, over what the
			// /24 level gives (which already merges the tables' shorter
			// prefixes in priority order).
			v2 = [256]*leaf{}
			for t := 0; t <= last; t++ {
				if n2[t] != nil {
					w.expand(n2[t].kid(uint(i)), &v2, n2[t].at(uint(i)))
				}
			}
			same := true
			for j := 1; j < 256 && same; j++ {
				same = v2[j] == v2[0]
			}
			if same {
				v1[i] = v2[0]
				continue
			}
			out[i>>6] |= 1 << (i & 63)
			w.kids = append(w.kids, w.makeNode(&v2, [4]uint64{}, 0))
		}
		cbits = out
		for i := 1; i < 256; i++ {
			if cbits[i>>6]&(1<<(i&63)) != 0 {
				v1[i] = v1[i-1]
			}
		}
	}
	fs := w.next
	cbase := uint32(len(fs.nodes))
	fs.nodes = append(fs.nodes, w.kids...)
	n := w.makeNode(&v1, cbits, cbase)
	n.def = def
	fs.nodes = append(fs.nodes, n)
	return nodeBit | uint32(len(fs.nodes)-1)
}

// fastRoots returns the roots the merged structure is built from.
func (f *FIB) fastRoots(roots *[3]*node) {
	for i, id := range [3]uint32{TableLocal, TableMain, TableDefault} {
		roots[i] = nil
		if t, ok := f.tables[id]; ok {
			if r := t.root.Load(); len(r.pfx) > 0 || len(r.kids) > 0 {
				roots[i] = r
			}
		}
	}
}

// chunk computes the 256 top entries of chunk hi into out; when no table
// has a prefix longer than /8 there, they are all the same.
func (w *fastWriter) chunk(roots *[3]*node, hi uint32, old, out *[256]uint32) {
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
			v = w.pid(l)
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
// the old chunk when nothing changed.
func (w *fastWriter) setChunk(hi uint32, out *[256]uint32) {
	fs := w.next
	if old := fs.top[hi]; old != nil && *old == *out {
		return
	}
	c := new([256]uint32)
	*c = *out
	fs.top[hi] = c
	w.own[hi] = true
}

// rebuildFast builds the merged structure from scratch and publishes it.
func (f *FIB) rebuildFast() {
	w := &f.fw
	w.epoch++
	old := f.fast.Load()
	fs := &fsnap{}
	if old != nil {
		fs.nodes = make([]fnode, 0, len(old.nodes)/2+64)
		fs.cbits = make([][4]uint64, 0, len(old.cbits)/2+16)
		fs.vals = make([]pinfo, 0, len(old.vals)/2+256)
		fs.info = make([]pinfo, 0, len(old.info)/2+16)
	}
	fs.info = append(fs.info, pinfo{})       // pid 0: no route
	fs.ans = append(fs.ans, noRoute)         // its answer
	fs.cbits = append(fs.cbits, [4]uint64{}) // kids 0: no children
	w.ansIdx, w.srcs = nil, nil
	w.ps = f.portSnap.Load()
	w.next = fs
	var roots [3]*node
	f.fastRoots(&roots)
	var out [256]uint32
	for hi := uint32(0); hi < 256; hi++ {
		w.chunk(&roots, hi, &zeroChunk, &out)
		if old != nil {
			fs.top[hi] = old.top[hi] // reused when equal
		}
		w.setChunk(hi, &out)
	}
	w.next, w.ps = nil, nil
	w.live = fs.bytes()
	w.nInfo, w.nAns = len(fs.info), len(fs.ans)
	w.rebuilds++
	f.fast.Store(fs)
}

// updateFast rebuilds the chunks and /16 blocks marked in d and publishes
// the result, or rebuilds everything when the arenas hold too much
// garbage.
func (f *FIB) updateFast(d *dirtySet) {
	old := f.fast.Load()
	w := &f.fw
	if old == nil || d.n > 4096 || d.nchunks == 256 || len(old.info) > 2*w.nInfo+4096 || len(old.ans) > 2*w.nAns+4096 {
		f.rebuildFast()
		return
	}
	slack := w.slack
	if slack == 0 {
		slack = 1 << 20
	}
	if old.bytes()-topBytes > 2*(w.live-topBytes)+slack {
		old = old.compact()
		w.live = old.bytes()
		w.compactions++
	}
	fs := &fsnap{}
	*fs = *old
	w.next = fs
	w.ps = f.portSnap.Load()
	w.own = [256]bool{}
	var roots [3]*node
	f.fastRoots(&roots)
	var out [256]uint32
	for hi := uint32(0); hi < 256; hi++ {
		if d.chunks[hi>>6]&(1<<(hi&63)) != 0 {
			w.chunk(&roots, hi, fs.top[hi], &out)
			w.setChunk(hi, &out)
		}
	}
	for _, b := range d.list {
		hi, lo := b>>8, b&255
		if d.chunks[hi>>6]&(1<<(hi&63)) != 0 {
			continue
		}
		if !w.own[hi] {
			c := new([256]uint32)
			*c = *fs.top[hi]
			fs.top[hi] = c
			w.own[hi] = true
		}
		fs.top[hi][lo] = w.block(&roots, b, fs.top[hi][lo])
	}
	w.next, w.ps = nil, nil
	f.fast.Store(fs)
}

// compact returns a copy of fs without the garbage in its arenas: the
// nodes, child bitmaps and values the top level reaches, copied into fresh
// arenas (a node's children stay contiguous). Pids and answers are shared.
func (fs *fsnap) compact() *fsnap {
	c := &fsnap{info: fs.info, ans: fs.ans}
	nodes, vals := 0, 0
	for hi := range fs.top {
		for _, e := range fs.top[hi] {
			if e&nodeBit != 0 {
				n := &fs.nodes[e&^nodeBit]
				nodes++
				vals += runsOf(n)
				if n.kids != 0 {
					k := ones(&fs.cbits[n.kids])
					nodes += k
					for j := 0; j < k; j++ {
						vals += runsOf(&fs.nodes[int(n.cbase)+j])
					}
				}
			}
		}
	}
	c.nodes = make([]fnode, 0, nodes+nodes/8+64)
	c.vals = make([]pinfo, 0, vals+vals/8+256)
	c.cbits = make([][4]uint64, 1, len(fs.cbits)/2+16)
	for hi := range fs.top {
		oc := fs.top[hi]
		var nc *[256]uint32
		for lo, e := range oc {
			if e&nodeBit == 0 {
				continue
			}
			if nc == nil {
				nc = new([256]uint32)
				*nc = *oc
			}
			nc[lo] = nodeBit | c.copyNode(fs, e&^nodeBit)
		}
		c.top[hi] = oc
		if nc != nil {
			c.top[hi] = nc
		}
	}
	return c
}

func runsOf(n *fnode) int { return ones(&n.lbits) }

func ones(bm *[4]uint64) int {
	return bits.OnesCount64(bm[0]) + bits.OnesCount64(bm[1]) + bits.OnesCount64(bm[2]) + bits.OnesCount64(bm[3])
}

// copyNode appends a copy of node i of fs (children first) and returns its
// index.
func (c *fsnap) copyNode(fs *fsnap, i uint32) uint32 {
	n := fs.nodes[i]
	if n.kids != 0 {
		cb := fs.cbits[n.kids]
		k := ones(&cb)
		base := uint32(len(c.nodes))
		for j := 0; j < k; j++ {
			kid := fs.nodes[int(n.cbase)+j]
			l := uint32(len(c.vals))
			c.vals = append(c.vals, fs.vals[kid.lbase:int(kid.lbase)+runsOf(&kid)]...)
			kid.lbase = l
			c.nodes = append(c.nodes, kid)
		}
		n.cbase = base
		n.kids = uint32(len(c.cbits))
		c.cbits = append(c.cbits, cb)
	}
	l := uint32(len(c.vals))
	c.vals = append(c.vals, fs.vals[n.lbase:int(n.lbase)+runsOf(&n)]...)
	n.lbase = l
	c.nodes = append(c.nodes, n)
	return uint32(len(c.nodes) - 1)
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

func (d *dirtySet) markAll() {
	d.chunks = [4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	d.nchunks = 256
}

func (d *dirtySet) any() bool { return d.nchunks > 0 || d.n > 0 }

// fastLookup answers from the merged structure when the longest match's
// first route fits the key; false sends the caller to the rule walk.
func fastLookup(fs *fsnap, k *Key, ps *portSnap, res *Result) bool {
	pi := fs.lpm(k.Dst)
	if a := fs.ansFor(pi.ans, k); a != nil {
		a.fill(pi.route, a.err, res)
		return true
	}
	return matchRoute(pi.route, k, ScopeUniverse, ps, false, res) && res.Err != errThrow
}

// bulkN is how many lookups the bulk walk takes level by level at once.
const bulkN = 32

// lpmBulk is lpm for up to bulkN addresses, level by level: the loads of
// one level are independent, so their cache misses overlap.
func (fs *fsnap) lpmBulk(dsts []uint32, out *[bulkN]pinfo) {
	n := len(dsts)
	if n > bulkN {
		n = bulkN
	}
	var ent, idx, defs [bulkN]uint32
	var deep [bulkN]uint8 // 0: done, 1: value index in idx, 2: child node in idx
	for i := 0; i < n; i++ {
		a := dsts[i]
		ent[i] = fs.top[a>>24][a>>16&255]
	}
	for i := 0; i < n; i++ {
		e := ent[i]
		if e&nodeBit == 0 {
			deep[i] = 0
			out[i] = fs.info[e]
			continue
		}
		nd := &fs.nodes[e&^nodeBit]
		defs[i] = nd.def
		c := dsts[i] >> 8 & 255
		if nd.kids != 0 && fs.cbits[nd.kids][c>>6]&(1<<(c&63)) != 0 {
			idx[i], deep[i] = nd.cbase+rank(&fs.cbits[nd.kids], c), 2
		} else {
			idx[i], deep[i] = nd.val(c), 1
		}
	}
	for i := 0; i < n; i++ {
		if deep[i] == 2 {
			nd := &fs.nodes[idx[i]]
			idx[i], deep[i] = nd.val(dsts[i]&255), 1
		}
	}
	for i := 0; i < n; i++ {
		if deep[i] != 0 {
			out[i] = fs.vals[idx[i]]
		}
	}
	for i := 0; i < n; i++ {
		if deep[i] != 0 && out[i].route == nil {
			out[i] = fs.info[defs[i]]
		}
	}
}

// LookupBulk is Lookup for many keys (res must be at least as long as
// keys). Without custom rules the lookups go through the merged structure
// bulkN at a time, level by level, so that their cache misses overlap; most
// end with their answer, without touching a route. Lock-free, no
// allocation.
func (f *FIB) LookupBulk(keys []Key, res []Result) {
	res = res[:len(keys)]
	if f.custom.Load() {
		for i := range keys {
			f.Lookup(&keys[i], &res[i])
		}
		return
	}
	fs := f.fast.Load()
	var dsts [bulkN]uint32
	var pis [bulkN]pinfo
	for off := 0; off < len(keys); off += bulkN {
		ks := keys[off:]
		if len(ks) > bulkN {
			ks = ks[:bulkN]
		}
		rs := res[off : off+len(ks)]
		for i := range ks {
			dsts[i] = ks[i].Dst
		}
		fs.lpmBulk(dsts[:len(ks)], &pis)
		for i := range ks {
			k, r := &ks[i], &rs[i]
			if inputMaybeSpecial(k) && inputSpecial(k, f.portSnap.Load(), r) {
				continue
			}
			if a := fs.ansFor(pis[i].ans, k); a != nil {
				a.fill(pis[i].route, a.inErr, r)
				continue
			}
			f.lookupSlow(fs, pis[i].route, k, r)
		}
	}
}

// lookupSlow is the end of an input lookup the answer table cannot give:
// the prefix's first route rt through matchRoute, else the rule walk.
func (f *FIB) lookupSlow(fs *fsnap, rt *Route, k *Key, res *Result) {
	ps := f.portSnap.Load()
	*res = Result{}
	if rt == nil || !matchRoute(rt, k, ScopeUniverse, ps, false, res) || res.Err == errThrow {
		*res = Result{}
		f.walkRules(k, ps, res)
	}
	inputFinish(res)
}

// LookupDsts is the destination-only bulk lookup for the forwarding path:
// out[i] is the route Lookup gives for Key{Dst: dsts[i], Iif: -1, Oif: -1}
// (no source, TOS, mark or flow hash), nil where that lookup fails or
// finds no route (out must be at least as long as dsts). Lock-free, no
// allocation.
func (f *FIB) LookupDsts(dsts []uint32, out []*Route) {
	out = out[:len(dsts)]
	if f.custom.Load() {
		var r Result
		for i, d := range dsts {
			k := Key{Dst: d, Iif: -1, Oif: -1}
			f.Lookup(&k, &r)
			out[i] = nil
			if r.Err == nil {
				out[i] = r.Route
			}
		}
		return
	}
	fs := f.fast.Load()
	var pis [bulkN]pinfo
	var r Result
	for off := 0; off < len(dsts); off += bulkN {
		ds := dsts[off:]
		if len(ds) > bulkN {
			ds = ds[:bulkN]
		}
		fs.lpmBulk(ds, &pis)
		os := out[off : off+len(ds)]
		for i, d := range ds {
			os[i] = nil
			if d == 0xffffffff || d>>24 == 0 || d>>24 == 127 || d>>28 == 0xe {
				continue
			}
			k := Key{Dst: d, Iif: -1, Oif: -1}
			if a := fs.ansFor(pis[i].ans, &k); a != nil {
				if a.inErr == errcNone {
					os[i] = pis[i].route
				}
				continue
			}
			f.lookupSlow(fs, pis[i].route, &k, &r)
			if r.Err == nil {
				os[i] = r.Route
			}
		}
	}
}
