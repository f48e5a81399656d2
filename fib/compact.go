package fib

// Every batch replaces the parts of the nodes it changed, and a large load
// replaces most parts many times over: the live ones end up scattered
// among the garbage of their predecessors, in size classes the collector
// cannot give back while one object in a span lives. A full table so held
// about as much free memory inside the heap as live data. Compact copies
// every published part, and the arrays it holds, into a few large
// allocations of exactly the needed size: the old ones become garbage
// whole, and the heap can return their memory.

// partSlabs are the allocations a compaction copies parts into.
type partSlabs struct {
	parts []part
	runs  []uint16
	pcode []uint16
	pfx   []*leaf
	pkey  []uint64
	kids  []*node
}

// Compact copies the parts of every table's trie into fresh dense
// allocations and publishes the copies, and compacts the merged
// structure's arenas when a load left them roomy or full of garbage; the
// content is the same, so readers see no change and no cached decision
// expires. It returns the number of parts copied. Call it after large
// changes, when the table is quiet: it costs about one copy of the tries.
func (f *FIB) Compact() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buildDeferredLocked()
	n := 0
	for _, t := range f.tables {
		n += compactTrie(t.root.Load())
	}
	w := &f.fw
	if f.fast.Load() != nil && (w.scale > 1 || w.cur.arenaBytes() > w.live+w.live/2) {
		w.scale = 1
		w.compactArenas()
		f.publishFast()
	}
	return n
}

// compactTrie copies the parts under root. Writers only, between batches
// (no node has a pending part).
func compactTrie(root *node) int {
	var need slabSizes
	countParts(root, &need)
	if need.parts == 0 {
		return 0
	}
	s := partSlabs{
		parts: make([]part, 0, need.parts),
		runs:  make([]uint16, 0, need.runs),
		pcode: make([]uint16, 0, need.pcode),
		pfx:   make([]*leaf, 0, need.pfx),
		pkey:  make([]uint64, 0, need.pkey),
		kids:  make([]*node, 0, need.kids),
	}
	copyParts(root, &s)
	return len(s.parts)
}

type slabSizes struct{ parts, runs, pcode, pfx, pkey, kids int }

func countParts(n *node, need *slabSizes) {
	p := n.p.Load()
	if p != &emptyPart {
		need.parts++
		need.runs += len(p.runs)
		need.pcode += len(p.pcode)
		need.pfx += len(p.pfx)
		need.pkey += len(p.pkey)
		need.kids += len(p.kids)
	}
	for _, k := range p.kids {
		countParts(k, need)
	}
}

func copyParts(n *node, s *partSlabs) {
	p := n.p.Load()
	if p == &emptyPart {
		return
	}
	s.parts = append(s.parts, *p)
	c := &s.parts[len(s.parts)-1]
	c.runs = carve(&s.runs, p.runs)
	c.pfx = carve(&s.pfx, p.pfx)
	c.pkey = carve(&s.pkey, p.pkey)
	c.kids = carve(&s.kids, p.kids)
	if p.pcode != nil {
		c.pcode = carve(&s.pcode, p.pcode)
	}
	n.p.Store(c)
	for _, k := range c.kids {
		copyParts(k, s)
	}
}

// carve appends src to the slab and returns the copy, its capacity its
// length: a writer that grows it copies it first, as any published array.
func carve[T any](slab *[]T, src []T) []T {
	if len(src) == 0 {
		return src[:0:0]
	}
	at := len(*slab)
	*slab = append(*slab, src...)
	return (*slab)[at:len(*slab):len(*slab)]
}
