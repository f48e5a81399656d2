package fib

import (
	"math/bits"
	"sort"
)

// The trie is a multibit trie of stride 8 with bitmap-compressed nodes, in
// the spirit of poptrie: a node at depth d owns the prefixes whose length
// falls in (8d, 8d+8] (depth 0 also owns /0), expanded over its 256 slots
// only (never pushed into children), and run-length compressed with a
// bitmap. Children are a second bitmap with a dense array. A lookup is at
// most four popcounts; the longest prefix seen on the way down wins.
//
// Nodes are immutable once published. Writers copy the path they change
// (RCU): a node private to the running batch (gen == batch gen) is changed in
// place, its leaf runs rebuilt once at commit.

// leaf is one prefix and its routes, ordered as the kernel orders aliases:
// TOS descending, then priority ascending.
type leaf struct {
	key    uint32
	plen   uint8
	routes []*Route
	one    [1]*Route // backing of routes for the common single-route prefix
	r0     Route     // that route, in the same allocation: one cache miss less per lookup
	// ans is the index of its first route's answer there, of epoch
	// aepoch (writers only).
	ans, aepoch uint32
}

func newLeaf(key uint32, plen uint8, routes []*Route) *leaf {
	l := &leaf{key: key, plen: plen}
	if len(routes) == 1 {
		l.r0 = *routes[0]
		l.one[0] = &l.r0
		l.routes = l.one[:]
	} else {
		l.routes = routes
	}
	return l
}

type node struct {
	lbits  [4]uint64 // bit i: slot i starts a new run of leaves
	kbits  [4]uint64 // bit i: slot i has a child
	lbase  [4]uint16 // runs starting in earlier words
	kbase  [4]uint16 // children in earlier words
	leaves []*leaf   // one per run; nil where no prefix of this node covers
	kids   []*node
	pfx    []*leaf  // the prefixes this node owns, sorted by (plen, key)
	pkey   []uint64 // pfxKey of each of pfx: searched without loading leaves
	gen    uint64   // batch that owns this unpublished node; 0 once published
	dirty  bool     // leaves/lbits are stale (private nodes only)
	// ownP and ownK: a private node's pfx and kids are its own copies, not
	// still shared with the published node it was cloned from.
	ownP, ownK bool
}

func depthOf(plen uint8) int {
	if plen <= 8 {
		return 0
	}
	return int(plen-1) >> 3
}

func slotOf(key uint32, depth int) uint {
	return uint(key>>(24-8*uint(depth))) & 255
}

func newRoot() *node {
	n := &node{}
	n.rebuildLeaves(0)
	return n
}

// lpm returns the longest prefix containing a. Hot path: no allocation.
func (n *node) lpm(a uint32) *leaf {
	var best *leaf
	for shift := uint(24); ; shift -= 8 {
		c := uint(a>>shift) & 255
		w, b := c>>6&3, c&63
		lw := n.lbits[w]
		if l := n.leaves[int(n.lbase[w])+bits.OnesCount64(lw&(2<<b-1))-1]; l != nil {
			best = l
		}
		kw := n.kbits[w]
		if kw&(1<<b) == 0 || shift == 0 {
			return best
		}
		n = n.kids[int(n.kbase[w])+bits.OnesCount64(kw&(1<<b-1))]
	}
}

func (n *node) kid(c uint) *node {
	w, b := c>>6&3, c&63
	kw := n.kbits[w]
	if kw&(1<<b) == 0 {
		return nil
	}
	return n.kids[int(n.kbase[w])+bits.OnesCount64(kw&(1<<b-1))]
}

// find returns the prefix (key, plen) among those n owns.
func (n *node) find(key uint32, plen uint8) *leaf {
	i := n.search(key, plen)
	if i < len(n.pkey) && n.pkey[i] == pfxKey(key, plen) {
		return n.pfx[i]
	}
	return nil
}

// pfxKey orders prefixes by (plen, key).
func pfxKey(key uint32, plen uint8) uint64 { return uint64(plen)<<32 | uint64(key) }

func (n *node) search(key uint32, plen uint8) int {
	k := pfxKey(key, plen)
	lo, hi := 0, len(n.pkey)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.pkey[m] < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// exact returns the prefix (key, plen); it reads only pfx and kids, so it
// also works on a batch's private nodes.
func (n *node) exact(key uint32, plen uint8) *leaf {
	d := depthOf(plen)
	for i := 0; i < d && n != nil; i++ {
		n = n.kid(slotOf(key, i))
	}
	if n == nil {
		return nil
	}
	return n.find(key, plen)
}

// below returns the longest prefix containing a that is shorter than
// maxLen: the backtracking step of fib_table_lookup. Reads pfx and kids
// only, so writers use it on private nodes too. No allocation.
func (n *node) below(a uint32, maxLen int) *leaf {
	var path [4]*node
	for d := 0; d < 4 && n != nil; d++ {
		path[d] = n
		n = n.kid(slotOf(a, d))
	}
	for l := maxLen - 1; l >= 0; l-- {
		p := path[depthOf(uint8(l))]
		if p == nil {
			continue
		}
		if x := p.find(a&mask(uint8(l)), uint8(l)); x != nil {
			return x
		}
	}
	return nil
}

// rebuildLeaves expands the owned prefixes over the 256 slots, shorter
// first so longer ones overwrite, and compresses the result into runs.
func (n *node) rebuildLeaves(depth int) {
	var exp [256]*leaf
	for _, l := range n.pfx {
		ll := int(l.plen) - 8*depth
		start := int(slotOf(l.key, depth))
		end := start + 1<<(8-ll)
		for i := start; i < end; i++ {
			exp[i] = l
		}
	}
	var lb [4]uint64
	runs := 0
	for i := 0; i < 256; i++ {
		if i == 0 || exp[i] != exp[i-1] {
			lb[i>>6] |= 1 << (i & 63)
			runs++
		}
	}
	leaves := make([]*leaf, 0, runs)
	for i := 0; i < 256; i++ {
		if lb[i>>6]&(1<<(i&63)) != 0 {
			leaves = append(leaves, exp[i])
		}
	}
	n.lbits = lb
	n.leaves = leaves
	s := 0
	for w := 0; w < 4; w++ {
		n.lbase[w] = uint16(s)
		s += bits.OnesCount64(lb[w])
	}
	n.dirty = false
}

// clone makes a private copy sharing pfx and kids until they change.
func (n *node) clone(gen uint64) *node {
	c := *n
	c.gen = gen
	c.ownP, c.ownK = false, false
	return &c
}

// setPfx puts (or with l == nil removes) the owned prefix (key, plen).
// Private nodes only.
func (n *node) setPfx(key uint32, plen uint8, l *leaf) {
	i := n.search(key, plen)
	hit := i < len(n.pkey) && n.pkey[i] == pfxKey(key, plen)
	if !hit && l == nil {
		return
	}
	if !n.ownP {
		n.pfx = append(make([]*leaf, 0, len(n.pfx)+1), n.pfx...)
		n.pkey = append(make([]uint64, 0, len(n.pkey)+1), n.pkey...)
		n.ownP = true
	}
	switch {
	case hit && l != nil:
		n.pfx[i] = l
	case hit:
		n.pfx = append(n.pfx[:i], n.pfx[i+1:]...)
		n.pkey = append(n.pkey[:i], n.pkey[i+1:]...)
	case l != nil:
		n.pfx = append(n.pfx, nil)
		copy(n.pfx[i+1:], n.pfx[i:])
		n.pfx[i] = l
		n.pkey = append(n.pkey, 0)
		copy(n.pkey[i+1:], n.pkey[i:])
		n.pkey[i] = pfxKey(key, plen)
	default:
		return
	}
	n.dirty = true
}

// setKid puts (or with k == nil removes) the child at slot c. Private nodes
// only.
func (n *node) setKid(c uint, k *node) {
	w, b := c>>6&3, c&63
	r := int(n.kbase[w]) + bits.OnesCount64(n.kbits[w]&(1<<b-1))
	has := n.kbits[w]&(1<<b) != 0
	if !has && k == nil {
		return
	}
	if !n.ownK {
		n.kids = append(make([]*node, 0, len(n.kids)+1), n.kids...)
		n.ownK = true
	}
	switch {
	case has && k != nil:
		n.kids[r] = k
		return
	case has:
		n.kids = append(n.kids[:r], n.kids[r+1:]...)
		n.kbits[w] &^= 1 << b
	case k != nil:
		n.kids = append(n.kids, nil)
		copy(n.kids[r+1:], n.kids[r:])
		n.kids[r] = k
		n.kbits[w] |= 1 << b
	default:
		return
	}
	s := 0
	for i := 0; i < 4; i++ {
		n.kbase[i] = uint16(s)
		s += bits.OnesCount64(n.kbits[i])
	}
}

// privNode is a node private to a batch, listed for finalize.
type privNode struct {
	n     *node
	depth int
}

// set returns n with the prefix (key, plen) set to l (removed when nil),
// copying n first unless the batch owns it, and listing the nodes it makes
// private in priv. It returns nil for a non-root node left empty.
func set(n *node, gen uint64, depth int, key uint32, plen uint8, l *leaf, priv *[]privNode) *node {
	if n == nil {
		if l == nil {
			return nil
		}
		n = &node{gen: gen, ownP: true, ownK: true}
		*priv = append(*priv, privNode{n, depth})
	} else if n.gen != gen {
		n = n.clone(gen)
		*priv = append(*priv, privNode{n, depth})
	}
	if depthOf(plen) == depth {
		n.setPfx(key, plen, l)
	} else {
		c := slotOf(key, depth)
		old := n.kid(c)
		if k := set(old, gen, depth+1, key, plen, l, priv); k != old {
			n.setKid(c, k)
		}
	}
	if depth > 0 && len(n.pfx) == 0 && len(n.kids) == 0 {
		return nil
	}
	return n
}

// finalize rebuilds the stale leaf runs of the batch's private nodes and
// marks them published. It takes them from the list set made rather than
// walking the trie: that would load every child of the nodes on the path.
func finalize(priv []privNode, gen uint64) {
	for _, p := range priv {
		finalizeNode(p.n, gen, p.depth)
	}
}

func finalizeNode(n *node, gen uint64, depth int) {
	if n.gen != gen {
		return
	}
	if n.dirty || n.leaves == nil {
		n.rebuildLeaves(depth)
	}
	if n.ownP && cap(n.pfx) > len(n.pfx)+len(n.pfx)/8 {
		n.pfx = append([]*leaf(nil), n.pfx...) // published nodes keep little slack
		n.pkey = append([]uint64(nil), n.pkey...)
	}
	if n.ownK && cap(n.kids) > len(n.kids)+len(n.kids)/8 {
		n.kids = append([]*node(nil), n.kids...)
	}
	n.ownP, n.ownK = false, false
	n.gen = 0
}

// collect appends every prefix under n.
func collect(n *node, out []*leaf) []*leaf {
	out = append(out, n.pfx...)
	for _, k := range n.kids {
		out = collect(k, out)
	}
	return out
}

// sortShow orders prefixes as `ip route show` lists them: by address, and
// for one address the longer prefix first (the kernel's leaf alias order).
func sortShow(ls []*leaf) {
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].key != ls[j].key {
			return ls[i].key < ls[j].key
		}
		return ls[i].plen > ls[j].plen
	})
}

// trieStats measures the memory of the lookup structure (nodes and their
// arrays, not the leaves or routes).
func trieStats(n *node) (nodes, bytes int) {
	if n == nil {
		return 0, 0
	}
	nodes = 1
	bytes = 152 + 8*cap(n.leaves) + 8*cap(n.kids) + 8*cap(n.pfx) + 8*cap(n.pkey)
	for _, k := range n.kids {
		a, b := trieStats(k)
		nodes += a
		bytes += b
	}
	return nodes, bytes
}
