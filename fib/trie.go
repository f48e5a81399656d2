package fib

import (
	"cmp"
	"math/bits"
	"slices"
	"sync/atomic"

	"ferry/netaddr"
)

// The trie is a multibit trie of stride 8 with bitmap-compressed nodes, in
// the spirit of poptrie: a node at depth d owns the prefixes whose length
// falls in (8d, 8d+8] (depth 0 also owns /0), expanded over its 256 slots
// only (never pushed into children), and run-length compressed with a
// bitmap. Children are a second bitmap with a dense array. A lookup is at
// most four popcounts; the longest prefix seen on the way down wins.
//
// Nodes are stable objects; what a node holds (its part) is immutable once
// published and replaced whole with an atomic store (RCU), as fib_trie
// replaces one tnode and links it into its parent. A change rewrites only
// the part of the node owning the prefix, not the path above it: a writer's
// cost does not grow with the fan-out of the nodes on the way down. Within
// a batch a node's pending part is changed in place and published once, at
// commit, deepest nodes first.

// leaf is one prefix and its routes, ordered as the kernel orders aliases:
// TOS descending, then priority ascending. Nearly every prefix has one
// route: the leaf holds it in the same allocation (one cache miss less per
// lookup, and 64 bytes a prefix), and only a prefix with several routes
// has a list of them. The prefix is r0's Dst and Len in either case.
type leaf struct {
	r0    Route     // the only route, when multi is nil
	multi *[]*Route // every route, when there are several
}

// newLeaf makes the leaf of a prefix with routes (at least one).
func newLeaf(key uint32, plen uint8, routes []*Route) *leaf {
	l := &leaf{}
	if len(routes) == 1 {
		l.r0 = *routes[0]
	} else {
		l.multi = &routes
	}
	l.r0.Dst, l.r0.Len = key, plen
	return l
}

func (l *leaf) key() uint32 { return l.r0.Dst }

func (l *leaf) plen() uint8 { return l.r0.Len }

// count is the number of routes of the prefix.
func (l *leaf) count() int {
	if l.multi != nil {
		return len(*l.multi)
	}
	return 1
}

// route returns the i-th route of the prefix.
func (l *leaf) route(i int) *Route {
	if l.multi != nil {
		return (*l.multi)[i]
	}
	return &l.r0
}

// appendRoutes appends the prefix's routes to rs.
func (l *leaf) appendRoutes(rs []*Route) []*Route {
	if l.multi != nil {
		return append(rs, *l.multi...)
	}
	return append(rs, &l.r0)
}

// part is what a node holds: its own prefixes, expanded into runs,
// and its children.
type part struct {
	lbits [4]uint64 // bit i: slot i starts a new run
	kbits [4]uint64 // bit i: slot i has a child
	lbase [4]uint16 // runs starting in earlier words
	kbase [4]uint16 // children in earlier words
	runs  []uint16  // per run, its prefix's index in pfx; noPfx where none covers
	kids  []*node
	pfx   []*leaf  // the prefixes this node owns, sorted by (plen, key)
	pkey  []uint64 // pfxKey of each of pfx: searched without loading leaves
	// Writers only, while the part is pending: runs/lbits are stale;
	// pfx, pkey and kids are its own copies, not still shared with the
	// published part it was cloned from.
	dirty, ownP, ownKey, ownCode, ownK bool
	// Writers of the merged structure only: the value of each prefix in
	// it (valUnknown where it changed), of epoch pepoch; nil until the
	// merged structure first needs them (fastWriter.prefixCodes).
	pcode  []uint16
	pepoch uint32
}

type node struct {
	p atomic.Pointer[part]
	// Writers only: the running batch's pending part (nil when none), the
	// parent and the slot there, and the serial of the last part
	// published in this subtree.
	next  *part
	up    *node
	stamp uint64
	slot  uint8
	depth uint8
}

// noPfx is a run no prefix of the node covers.
const noPfx = 0xffff

// emptyPart is the part of a node with nothing: one run, no leaf.
var emptyPart = part{lbits: [4]uint64{1}, lbase: [4]uint16{0, 1, 1, 1}, runs: []uint16{noPfx}}

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
	n.p.Store(&emptyPart)
	return n
}

// view is the part readers see, or with writer set the batch's pending one.
func (n *node) view(writer bool) *part {
	if writer && n.next != nil {
		return n.next
	}
	return n.p.Load()
}

// lpm returns the longest prefix containing a. Hot path: no allocation.
func (n *node) lpm(a uint32) *leaf {
	var best *leaf
	for shift := uint(24); ; shift -= 8 {
		p := n.p.Load()
		c := uint(a>>shift) & 255
		w, b := c>>6&3, c&63
		lw := p.lbits[w]
		if r := p.runs[int(p.lbase[w])+bits.OnesCount64(lw&(2<<b-1))-1]; r != noPfx {
			best = p.pfx[r]
		}
		kw := p.kbits[w]
		if kw&(1<<b) == 0 || shift == 0 {
			return best
		}
		n = p.kids[int(p.kbase[w])+bits.OnesCount64(kw&(1<<b-1))]
	}
}

func (p *part) kid(c uint) *node {
	w, b := c>>6&3, c&63
	kw := p.kbits[w]
	if kw&(1<<b) == 0 {
		return nil
	}
	return p.kids[int(p.kbase[w])+bits.OnesCount64(kw&(1<<b-1))]
}

// at returns the leaf of the part's own prefixes at slot c (nil if none).
// Published parts only: a pending part's runs may be stale.
func (p *part) at(c uint) *leaf {
	w, b := c>>6&3, c&63
	if r := p.runs[int(p.lbase[w])+bits.OnesCount64(p.lbits[w]&(2<<b-1))-1]; r != noPfx {
		return p.pfx[r]
	}
	return nil
}

func (p *part) empty() bool { return len(p.pfx) == 0 && len(p.kids) == 0 }

// find returns the prefix (key, plen) among those p owns.
func (p *part) find(key uint32, plen uint8) *leaf {
	i := p.search(key, plen)
	if i < len(p.pkey) && p.pkey[i] == pfxKey(key, plen) {
		return p.pfx[i]
	}
	return nil
}

// pfxKey orders prefixes by (plen, key).
func pfxKey(key uint32, plen uint8) uint64 { return uint64(plen)<<32 | uint64(key) }

func (p *part) search(key uint32, plen uint8) int {
	k := pfxKey(key, plen)
	lo, hi := 0, len(p.pkey)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.pkey[m] < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// exact returns the prefix (key, plen) in the writer's view.
func (n *node) exact(key uint32, plen uint8) *leaf {
	d := depthOf(plen)
	for i := 0; i < d && n != nil; i++ {
		n = n.view(true).kid(slotOf(key, i))
	}
	if n == nil {
		return nil
	}
	p := n.view(true)
	if !p.dirty {
		// Most often the prefix is the longest at its first slot: one
		// load from the runs instead of a binary search's several.
		if l := p.at(slotOf(key, d)); l != nil && l.key() == key && l.plen() == plen {
			return l
		}
	}
	return p.find(key, plen)
}

// warmGroup is how many prefixes warmPaths walks at once.
const warmGroup = 16

// warmKey is a prefix for warmPaths, and the root of its trie.
type warmKey struct {
	n    *node
	key  uint32
	plen uint8
}

// warmPaths walks the writer's paths to the prefixes level by level, all
// of them at each level, down to the prefix's slot in its part: what exact
// and set read. The prefixes' loads do not depend on each other, so their
// cache misses overlap, and the walks that follow find the lines cached.
// Only a hint: it changes nothing, and stale runs of a pending part are
// read with their bounds checked. It returns a sum of what it read.
func warmPaths(ws []warmKey) uintptr {
	var sum uintptr
	for d := 0; d < 4; d++ {
		more := false
		for i := range ws {
			w := &ws[i]
			if w.n == nil {
				continue
			}
			p := w.n.view(true)
			c := slotOf(w.key, d)
			if d < depthOf(w.plen) {
				w.n = p.kid(c)
				more = more || w.n != nil
				continue
			}
			w.n = nil
			j, b := c>>6&3, c&63
			if r := int(p.lbase[j]) + bits.OnesCount64(p.lbits[j]&(2<<b-1)) - 1; r >= 0 && r < len(p.runs) {
				if x := int(p.runs[r]); x < len(p.pfx) {
					sum += uintptr(p.pfx[x].r0.Dst)
				}
			}
		}
		if !more {
			break
		}
	}
	return sum
}

// below returns the longest prefix containing a that is shorter than
// maxLen: the backtracking step of fib_table_lookup. It reads prefix lists
// and children only, so writers use it on pending parts too. No allocation.
func (n *node) below(a uint32, maxLen int, writer bool) *leaf {
	var path [4]*part
	for d := 0; d < 4 && n != nil; d++ {
		path[d] = n.view(writer)
		n = path[d].kid(slotOf(a, d))
	}
	for l := maxLen - 1; l >= 0; l-- {
		p := path[depthOf(uint8(l))]
		if p == nil {
			continue
		}
		if x := p.find(a&netaddr.Mask(uint8(l)), uint8(l)); x != nil {
			return x
		}
	}
	return nil
}

// rebuildRuns expands the owned prefixes over the 256 slots, shorter
// first so longer ones overwrite, and compresses the result into runs. A
// run can start only where a prefix starts or ends: only those slots are
// compared, not all 256 (a part holds some fifteen prefixes).
func (p *part) rebuildRuns(depth int) {
	exp := noPfxSlots
	cand := [4]uint64{1}
	for j, k := range p.pkey { // not the leaves: each would be a cache miss
		ll := int(k>>32) - 8*depth
		start := int(slotOf(uint32(k), depth))
		end := start + 1<<(8-ll)
		for i := start; i < end; i++ {
			exp[i] = uint16(j)
		}
		cand[start>>6] |= 1 << (start & 63)
		if end < 256 {
			cand[end>>6] |= 1 << (end & 63)
		}
	}
	var lb [4]uint64
	var runs [256]uint16
	n := 0
	prev := ^exp[0] // slot 0 starts a run
	for w, c := range cand {
		for ; c != 0; c &= c - 1 {
			b := bits.TrailingZeros64(c)
			if v := exp[w<<6|b]; v != prev {
				lb[w] |= 1 << b
				runs[n] = v
				n++
				prev = v
			}
		}
	}
	p.lbits = lb
	p.runs = append([]uint16(nil), runs[:n]...)
	s := 0
	for w := 0; w < 4; w++ {
		p.lbase[w] = uint16(s)
		s += bits.OnesCount64(lb[w])
	}
	p.dirty = false
}

// noPfxSlots is 256 slots no prefix covers.
var noPfxSlots = func() (s [256]uint16) {
	for i := range s {
		s[i] = noPfx
	}
	return s
}()

// clone makes a pending copy sharing pfx and kids until they change.
func (p *part) clone() *part {
	c := *p
	c.ownP, c.ownKey, c.ownCode, c.ownK, c.dirty = false, false, false, false, false
	return &c
}

// setPfx puts (or with l == nil removes) the owned prefix (key, plen).
// Pending parts only.
func (p *part) setPfx(key uint32, plen uint8, l *leaf) {
	i := p.search(key, plen)
	hit := i < len(p.pkey) && p.pkey[i] == pfxKey(key, plen)
	if !hit && l == nil {
		return
	}
	if hit && l != nil {
		// Same prefix, new routes: the keys and the runs (indexes into
		// pfx) stay as they are.
		if !p.ownP {
			p.pfx = append(make([]*leaf, 0, len(p.pfx)), p.pfx...)
			p.ownP = true
		}
		p.pfx[i] = l
		if p.pcode != nil {
			p.ownCodes()
			p.pcode[i] = valUnknown
		}
		return
	}
	if !p.ownP {
		p.pfx = append(make([]*leaf, 0, len(p.pfx)+1), p.pfx...)
		p.ownP = true
	}
	if !p.ownKey {
		p.pkey = append(make([]uint64, 0, len(p.pkey)+1), p.pkey...)
		p.ownKey = true
	}
	if p.pcode != nil {
		p.ownCodes()
	}
	if hit {
		p.pfx = append(p.pfx[:i], p.pfx[i+1:]...)
		p.pkey = append(p.pkey[:i], p.pkey[i+1:]...)
		if p.pcode != nil {
			p.pcode = append(p.pcode[:i], p.pcode[i+1:]...)
		}
	} else {
		p.pfx = append(p.pfx, nil)
		copy(p.pfx[i+1:], p.pfx[i:])
		p.pfx[i] = l
		p.pkey = append(p.pkey, 0)
		copy(p.pkey[i+1:], p.pkey[i:])
		p.pkey[i] = pfxKey(key, plen)
		if p.pcode != nil {
			p.pcode = append(p.pcode, 0)
			copy(p.pcode[i+1:], p.pcode[i:])
			p.pcode[i] = valUnknown
		}
	}
	p.dirty = true
}

// ownCodes gives a pending part its own copy of the prefix values.
func (p *part) ownCodes() {
	if !p.ownCode {
		p.pcode = append(make([]uint16, 0, len(p.pcode)+1), p.pcode...)
		p.ownCode = true
	}
}

// setKid puts (or with k == nil removes) the child at slot c. Pending
// parts only.
func (p *part) setKid(c uint, k *node) {
	w, b := c>>6&3, c&63
	r := int(p.kbase[w]) + bits.OnesCount64(p.kbits[w]&(1<<b-1))
	has := p.kbits[w]&(1<<b) != 0
	if !has && k == nil {
		return
	}
	if !p.ownK {
		p.kids = append(make([]*node, 0, len(p.kids)+1), p.kids...)
		p.ownK = true
	}
	switch {
	case has && k != nil:
		p.kids[r] = k
		return
	case has:
		p.kids = append(p.kids[:r], p.kids[r+1:]...)
		p.kbits[w] &^= 1 << b
	default:
		p.kids = append(p.kids, nil)
		copy(p.kids[r+1:], p.kids[r:])
		p.kids[r] = k
		p.kbits[w] |= 1 << b
	}
	s := 0
	for i := 0; i < 4; i++ {
		p.kbase[i] = uint16(s)
		s += bits.OnesCount64(p.kbits[i])
	}
}

// trieTx is a batch's change to one trie: the nodes with a pending part.
type trieTx struct {
	root *node
	priv []*node
}

// pending returns n's pending part, making it on first use.
func (x *trieTx) pending(n *node) *part {
	if n.next == nil {
		n.next = n.p.Load().clone()
		x.priv = append(x.priv, n)
	}
	return n.next
}

// set puts the prefix (key, plen) to l (removes it when nil), adding the
// nodes on the way that are missing. A new node is linked into its
// parent's pending part with the empty part of its own, so it shows
// nothing until the batch publishes.
func (x *trieTx) set(key uint32, plen uint8, l *leaf) {
	n := x.root
	for d := 0; d < depthOf(plen); d++ {
		c := slotOf(key, d)
		k := n.view(true).kid(c)
		if k == nil {
			if l == nil {
				return
			}
			k = &node{up: n, slot: uint8(c), depth: uint8(d + 1)}
			k.p.Store(&emptyPart)
			x.pending(n).setKid(c, k)
		}
		n = k
	}
	x.pending(n).setPfx(key, plen, l)
}

// publish rebuilds the stale runs of the pending parts and publishes
// them, deepest first: a node left empty is unlinked from its parent's
// part, which is then published after it. serial stamps the nodes whose
// subtree changed.
func (x *trieTx) publish(serial *uint64) {
	for d := 3; d >= 0; d-- {
		for i := 0; i < len(x.priv); i++ { // unlinking appends parents
			n := x.priv[i]
			if int(n.depth) != d || n.next == nil {
				continue
			}
			p := n.next
			p.finish(d)
			if d > 0 && p.empty() {
				x.pending(n.up).setKid(uint(n.slot), nil)
			}
			n.p.Store(p)
			n.next = nil
			*serial++
			for a := n; a != nil; a = a.up {
				a.stamp = *serial
			}
		}
	}
	x.priv = x.priv[:0]
}

func (p *part) finish(depth int) {
	if p.dirty || p.runs == nil {
		p.rebuildRuns(depth)
	}
	// Published parts keep little slack.
	if p.ownP && cap(p.pfx) > len(p.pfx)+len(p.pfx)/8 {
		p.pfx = append([]*leaf(nil), p.pfx...)
	}
	if p.ownKey && cap(p.pkey) > len(p.pkey)+len(p.pkey)/8 {
		p.pkey = append([]uint64(nil), p.pkey...)
	}
	if p.ownCode && cap(p.pcode) > len(p.pcode)+len(p.pcode)/8 {
		p.pcode = append([]uint16(nil), p.pcode...)
	}
	if p.ownK && cap(p.kids) > len(p.kids)+len(p.kids)/8 {
		p.kids = append([]*node(nil), p.kids...)
	}
	p.ownP, p.ownKey, p.ownCode, p.ownK = false, false, false, false
}

// collect appends every prefix under n, in the readers' or the writer's
// view.
func collect(n *node, out []*leaf, writer bool) []*leaf {
	p := n.view(writer)
	out = append(out, p.pfx...)
	for _, k := range p.kids {
		out = collect(k, out, writer)
	}
	return out
}

// sortShow orders prefixes as `ip route show` lists them: by address, and
// for one address the longer prefix first (the kernel's leaf alias order).
func sortShow(ls []*leaf) {
	slices.SortFunc(ls, func(a, b *leaf) int {
		if a.key() != b.key() {
			return cmp.Compare(a.key(), b.key())
		}
		return cmp.Compare(b.plen(), a.plen())
	})
}

// trieStats measures the memory of the lookup structure (nodes, parts and
// their arrays, not the leaves or routes).
func trieStats(n *node) (nodes, bytes int) {
	if n == nil {
		return 0, 0
	}
	p := n.p.Load()
	nodes = 1
	bytes = 48 + 128 + 2*cap(p.runs) + 8*cap(p.kids) + 8*cap(p.pfx) + 8*cap(p.pkey)
	for _, k := range p.kids {
		a, b := trieStats(k)
		nodes += a
		bytes += b
	}
	return nodes, bytes
}
