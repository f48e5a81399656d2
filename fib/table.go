package fib

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"sync/atomic"

	"ferry/cache"
	"ferry/netaddr"
)

// table is one routing table; root is what readers load.
type table struct {
	id    uint32
	root  atomic.Pointer[node]
	count int     // routes, writer side
	tx    tableTx // a batch's change to it, reused
}

func (f *FIB) tableLocked(id uint32) *table {
	if t, ok := f.tables[id]; ok {
		return t
	}
	t := &table{id: id}
	t.root.Store(newRoot())
	f.tables[id] = t
	return t
}

// Op is a route change with the kernel's netlink flag semantics.
type Op uint8

const (
	OpAdd     Op = iota + 1 // ip route add: NLM_F_CREATE|NLM_F_EXCL
	OpDel                   // ip route del
	OpReplace               // ip route replace: NLM_F_CREATE|NLM_F_REPLACE
	OpChange                // ip route change: NLM_F_REPLACE
	OpAppend                // ip route append: NLM_F_CREATE|NLM_F_APPEND
	OpPrepend               // ip route prepend: NLM_F_CREATE
)

var opNames = [...]string{"", "add", "del", "replace", "change", "append", "prepend"}

func (o Op) String() string {
	if int(o) < len(opNames) && o != 0 {
		return opNames[o]
	}
	return "op" + strconv.Itoa(int(o))
}

// RouteCmd is one route change for Apply.
type RouteCmd struct {
	Op    Op
	Route Route
}

// nhEntry is an interned nexthop set: routes with identical attributes share
// their nexthops and so their decision caches, as kernel routes share a
// fib_info.
type nhEntry struct {
	nhs  []*Nexthop
	refs int
}

// Batch applies many changes under one lock and publishes them once.
type Batch struct {
	f       *FIB
	txs     []*tableTx
	changed bool
	dirty   dirtySet // blocks of the merged fast structure to rebuild
	warm    uintptr  // what warmPaths read, kept so that it reads
}

type tableTx struct {
	t *table
	trieTx
	changed bool
}

type gwKey struct {
	table uint32
	gw    uint32
	port  int
	scope Scope
}

type gwRes struct {
	port int
	err  error
}

// Batch runs fn with a batch and publishes what it changed once, then bumps
// the generation id. Changes made before an error fn returns are kept.
func (f *FIB) Batch(fn func(b *Batch) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.beginLocked()
	err := fn(b)
	b.commit()
	return err
}

func (f *FIB) beginLocked() *Batch {
	b := &f.batch // reused: one batch at a time, under f.mu
	b.f = f
	b.dirty, f.fw.dirty = f.fw.dirty, dirtySet{} // its bitmap, reused
	return b
}

func (b *Batch) tx(t *table) *tableTx {
	for _, x := range b.txs {
		if x.t == t {
			return x
		}
	}
	x := &t.tx
	*x = tableTx{t: t, trieTx: trieTx{root: t.root.Load(), priv: x.priv[:0]}}
	b.txs = append(b.txs, x)
	return x
}

func (b *Batch) commit() {
	for _, x := range b.txs {
		if x.changed {
			x.publish(&b.f.serial)
			if x.t.root.Load() != x.root {
				x.t.root.Store(x.root) // flushed: a new trie
			}
		}
	}
	if b.dirty.any() {
		b.f.updateFast(&b.dirty)
	}
	if b.changed {
		b.f.gen.Bump()
	}
	b.txs = b.txs[:0]
	b.changed = false
	b.dirty.reset()
	b.f.fw.dirty = b.dirty
}

func (x *tableTx) get(key uint32, plen uint8) *leaf { return x.root.exact(key, plen) }

func (b *Batch) put(x *tableTx, key uint32, plen uint8, l *leaf) {
	x.set(key, plen, l)
	if b.f.fw.plan.has(x.t.id) {
		b.dirty.mark(key, plen)
	}
	x.changed = true
	b.changed = true
}

// Apply applies one route change.
func (f *FIB) Apply(cmd RouteCmd) error {
	return f.Batch(func(b *Batch) error { return b.Apply(cmd) })
}

// Add is `ip route add`.
func (f *FIB) Add(r Route) error { return f.Apply(RouteCmd{OpAdd, r}) }

// Del is `ip route del`: fields left zero (or, for parsed routes, not
// given) match any value.
func (f *FIB) Del(r Route) error { return f.Apply(RouteCmd{OpDel, r}) }

// Replace is `ip route replace`.
func (f *FIB) Replace(r Route) error { return f.Apply(RouteCmd{OpReplace, r}) }

// Change is `ip route change`.
func (f *FIB) Change(r Route) error { return f.Apply(RouteCmd{OpChange, r}) }

// Append is `ip route append`.
func (f *FIB) Append(r Route) error { return f.Apply(RouteCmd{OpAppend, r}) }

// Prepend is `ip route prepend`.
func (f *FIB) Prepend(r Route) error { return f.Apply(RouteCmd{OpPrepend, r}) }

// Add, Del, Replace, Change, Append and Prepend of a batch.
func (b *Batch) Add(r Route) error     { return b.Apply(RouteCmd{OpAdd, r}) }
func (b *Batch) Del(r Route) error     { return b.Apply(RouteCmd{OpDel, r}) }
func (b *Batch) Replace(r Route) error { return b.Apply(RouteCmd{OpReplace, r}) }
func (b *Batch) Change(r Route) error  { return b.Apply(RouteCmd{OpChange, r}) }
func (b *Batch) Append(r Route) error  { return b.Apply(RouteCmd{OpAppend, r}) }
func (b *Batch) Prepend(r Route) error { return b.Apply(RouteCmd{OpPrepend, r}) }

// Apply applies one route change within the batch.
func (b *Batch) Apply(cmd RouteCmd) error {
	r := cmd.Route
	if r.Table == TableUnspec {
		r.Table = TableMain
		if r.Type == Local || r.Type == Broadcast || r.Type == Anycast {
			r.Table = TableLocal
		}
	}
	if r.Len > 32 {
		return fmt.Errorf("route %s: invalid prefix length %d", routeName(&r), r.Len)
	}
	if r.Dst&^netaddr.Mask(r.Len) != 0 {
		return fmt.Errorf("route %s: invalid prefix for given prefix length", routeName(&r))
	}
	switch cmd.Op {
	case OpDel:
		return b.del(&r)
	case OpAdd, OpReplace, OpChange, OpAppend, OpPrepend:
		return b.insert(&r, cmd.Op)
	}
	return fmt.Errorf("route %s: unknown operation %d", routeName(&r), cmd.Op)
}

// ApplyAll applies cmds in order, stopping at the first that fails: it
// returns that one's index, or -1. A group of commands at a time, it first
// walks their prefixes' paths together (warmPaths), so that the cache
// misses of a large batch's inserts overlap instead of coming one after
// the other.
func (b *Batch) ApplyAll(cmds []RouteCmd) (int, error) {
	var ws [warmGroup]warmKey
	for i := range cmds {
		if i%warmGroup == 0 {
			n := 0
			for _, c := range cmds[i:min(i+warmGroup, len(cmds))] {
				id := c.Route.Table
				if id == TableUnspec {
					id = TableMain // local types go to local (Apply): the walk is only a hint
				}
				if t, ok := b.f.tables[id]; ok && c.Route.Len <= 32 {
					ws[n] = warmKey{n: b.tx(t).root, key: c.Route.Dst, plen: c.Route.Len}
					n++
				}
			}
			b.warm += warmPaths(ws[:n])
		}
		if err := b.Apply(cmds[i]); err != nil {
			return i, err
		}
	}
	return -1, nil
}

func routeName(r *Route) string {
	s := fmt.Sprintf("%s/%d", netaddr.IPv4String(r.Dst), r.Len)
	if r.Table != TableMain && r.Table != TableUnspec {
		s += " table " + TableName(r.Table)
	}
	return strconv.Quote(s)
}

// fibProps holds the minimum scope of each route type (the kernel's
// fib_props) and whether it is a reject type, which carries no nexthop.
func typeScope(t Type) (Scope, bool) {
	switch t {
	case Unicast, Multicast:
		return ScopeUniverse, true
	case Local:
		return ScopeHost, true
	case Broadcast, Anycast:
		return ScopeLink, true
	case Blackhole, Unreachable, Prohibit, Throw:
		return ScopeUniverse, true
	}
	return 0, false
}

func isReject(t Type) bool { return t >= Blackhole && t <= Throw }

// insert validates r as fib_create_info does and links it as
// fib_table_insert does.
func (b *Batch) insert(r *Route, op Op) error {
	f := b.f
	if r.Type == 0 {
		r.Type = Unicast
	}
	minScope, ok := typeScope(r.Type)
	if !ok {
		return fmt.Errorf("route %s: invalid route type %d", routeName(r), r.Type)
	}
	if r.Scope < minScope {
		return fmt.Errorf("route %s: invalid scope", routeName(r))
	}
	if isReject(r.Type) {
		if len(r.Nexthops) > 0 {
			return fmt.Errorf("route %s: gateway, device and multipath can not be specified for this route type", routeName(r))
		}
	} else {
		if r.Scope > ScopeHost {
			return fmt.Errorf("route %s: invalid scope", routeName(r))
		}
		if len(r.Nexthops) == 0 && r.Type != Local && r.Type != Broadcast && r.Type != Anycast && r.Type != Multicast {
			return fmt.Errorf("route %s: no nexthop: give a gateway (via) or a device (dev)", routeName(r))
		}
		if r.Scope == ScopeHost && len(r.Nexthops) > 1 {
			return fmt.Errorf("route %s: route with host scope can not have multiple nexthops", routeName(r))
		}
		// Work on copies: resolving a gateway fills in the port.
		nhs := make([]*Nexthop, len(r.Nexthops))
		for i, nh := range r.Nexthops {
			if nh == nil {
				return fmt.Errorf("route %s: nexthop %d is nil", routeName(r), i)
			}
			c := *nh
			if err := b.checkNexthop(r, &c); err != nil {
				return err
			}
			nhs[i] = &c
		}
		r.Nexthops = nhs
	}
	if r.Prefsrc != 0 && !(r.Type == Local && r.Dst == r.Prefsrc && r.Len == 32) && !b.isLocal(r.Prefsrc) {
		return fmt.Errorf("route %s: invalid prefsrc address %s", routeName(r), netaddr.IPv4String(r.Prefsrc))
	}

	t := f.tableLocked(r.Table)
	x := b.tx(t)
	l := x.get(r.Dst, r.Len)
	var buf [4]*Route
	var old []*Route
	if l != nil {
		old = l.appendRoutes(buf[:0])
	}
	var kbuf, obuf [infoKeyMax]byte
	ikey := infoKey(kbuf[:0], r)
	// fib_find_alias: the first alias with a lower TOS, or the same TOS and a
	// priority not lower.
	first := 0
	for first < len(old) && (old[first].Tos > r.Tos || old[first].Tos == r.Tos && old[first].Priority < r.Priority) {
		first++
	}
	var removed *Route
	at := first
	if first < len(old) && old[first].Tos == r.Tos && old[first].Priority == r.Priority {
		if op == OpAdd {
			return fmt.Errorf("route %s: %w", routeName(r), ErrExists)
		}
		end := first
		match := -1
		for end < len(old) && old[end].Tos == r.Tos && old[end].Priority == r.Priority {
			if match < 0 && old[end].Type == r.Type && string(infoKey(obuf[:0], old[end])) == string(ikey) {
				match = end
			}
			end++
		}
		switch {
		case (op == OpReplace || op == OpChange) && match >= 0:
			return nil // identical: nothing to do
		case op == OpReplace || op == OpChange:
			removed = old[first]
		case match >= 0:
			return fmt.Errorf("route %s: %w", routeName(r), ErrExists)
		case op == OpAppend:
			at = end
		}
	} else if op == OpChange {
		return fmt.Errorf("route %s: %w", routeName(r), ErrNoEntry)
	}

	if len(old) == 0 || len(old) == 1 && removed != nil {
		// The common case, the prefix's only route: built in its leaf,
		// with no garbage beside it (a full table's load would otherwise
		// leave the leaves' memory half empty).
		nl := &leaf{}
		b.publishRoute(&nl.r0, r, ikey)
		b.put(x, r.Dst, r.Len, nl)
	} else {
		nr := new(Route)
		b.publishRoute(nr, r, ikey)
		routes := make([]*Route, 0, len(old)+1)
		routes = append(routes, old[:at]...)
		routes = append(routes, nr)
		if removed != nil {
			routes = append(routes, old[at+1:]...)
		} else {
			routes = append(routes, old[at:]...)
		}
		b.put(x, r.Dst, r.Len, newLeaf(r.Dst, r.Len, routes))
	}
	if removed != nil {
		b.release(removed)
	} else {
		t.count++
	}
	if r.Scope != ScopeUniverse || r.Table == TableLocal || removed != nil && removed.Scope != ScopeUniverse {
		b.f.gwCache = nil // gateways resolve through link and host routes
	}
	return nil
}

// publishRoute writes into nr the immutable route added to the table: r
// with its interned nexthops.
func (b *Batch) publishRoute(nr, r *Route, ikey []byte) {
	f := b.f
	*nr = *r
	nr.given = 0
	if e, ok := f.nhs[string(ikey)]; ok { // (no string made to look up)
		e.refs++
		nr.Nexthops = e.nhs
		return
	}
	if len(r.Nexthops) == 0 {
		nr.Nexthops = nil
	} else {
		nhs := make([]*Nexthop, len(r.Nexthops))
		for i, nh := range r.Nexthops {
			w := nh.Weight
			if w < 1 {
				w = 1
			}
			nhs[i] = &Nexthop{Gateway: nh.Gateway, Port: nh.Port, Weight: w, Onlink: nh.Onlink,
				Cache: cache.NewNhCache(f.cores), UpperBound: -1}
		}
		setUpperBounds(nhs)
		nr.Nexthops = nhs
	}
	f.nhs[string(ikey)] = &nhEntry{nhs: nr.Nexthops, refs: 1}
	if len(nr.Nexthops) > 1 {
		f.multipath.Add(1)
	}
}

// setUpperBounds computes fib_rebalance's bounds with every nexthop alive.
func setUpperBounds(nhs []*Nexthop) {
	if len(nhs) < 2 {
		return
	}
	total := 0
	for _, nh := range nhs {
		total += nh.Weight
	}
	w := 0
	for _, nh := range nhs {
		w += nh.Weight
		nh.UpperBound = int32((uint64(w)<<31+uint64(total)/2)/uint64(total)) - 1
	}
}

func (b *Batch) release(r *Route) {
	var kbuf [infoKeyMax]byte
	k := string(infoKey(kbuf[:0], r))
	if e, ok := b.f.nhs[k]; ok {
		if e.refs--; e.refs <= 0 {
			if len(e.nhs) > 1 {
				b.f.multipath.Add(-1)
			}
			for _, nh := range e.nhs {
				b.f.exc.Release(nh.Cache)
			}
			delete(b.f.nhs, k)
		}
	}
}

// infoKey identifies what routes may share: everything but the prefix and
// TOS (the kernel's fib_info plus type and table, which decisions carry).
// Binary, built without fmt: it is made for every route added.
func infoKey(b []byte, r *Route) []byte {
	b = binary.LittleEndian.AppendUint32(b, r.Table)
	b = append(b, byte(r.Type), byte(r.Scope), r.Proto)
	b = binary.LittleEndian.AppendUint32(b, r.Priority)
	b = binary.LittleEndian.AppendUint32(b, r.Prefsrc)
	b = binary.LittleEndian.AppendUint32(b, r.MTU)
	if r.MTULock {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	for _, nh := range r.Nexthops {
		w := nh.Weight
		if w < 1 {
			w = 1
		}
		b = binary.LittleEndian.AppendUint32(b, nh.Gateway)
		b = binary.LittleEndian.AppendUint64(b, uint64(int64(nh.Port)))
		b = binary.LittleEndian.AppendUint64(b, uint64(int64(w)))
		if nh.Onlink {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

// infoKeyMax is the room for a key of two nexthops: larger ones grow onto
// the heap.
const infoKeyMax = 64

// checkNexthop validates nh and resolves its port from its gateway as
// fib_check_nh does, filling in nh.Port.
func (b *Batch) checkNexthop(r *Route, nh *Nexthop) error {
	f := b.f
	if nh.Port >= 0 && f.portNameLocked(nh.Port) == "" {
		return fmt.Errorf("route %s: no such port %d", routeName(r), nh.Port)
	}
	if nh.Weight < 0 || nh.Weight > 256 {
		return fmt.Errorf("route %s: nexthop weight %d out of range 1..256", routeName(r), nh.Weight)
	}
	if nh.Gateway == 0 {
		if nh.Onlink {
			return fmt.Errorf("route %s: onlink needs a gateway", routeName(r))
		}
		if nh.Port < 0 {
			return fmt.Errorf("route %s: nexthop has neither gateway nor device", routeName(r))
		}
		return nil
	}
	if r.Scope >= ScopeHost {
		return fmt.Errorf("route %s: route with host scope can not have a gateway", routeName(r))
	}
	if nh.Onlink {
		if nh.Port < 0 {
			return fmt.Errorf("route %s: nexthop device required for onlink", routeName(r))
		}
		if t := b.addrType(nh.Gateway); t != Unicast && t != 0 {
			return fmt.Errorf("route %s: nexthop has invalid gateway %s", routeName(r), netaddr.IPv4String(nh.Gateway))
		}
		return nil
	}
	k := gwKey{r.Table, nh.Gateway, nh.Port, r.Scope}
	res, ok := f.gwCache[k]
	if !ok {
		res = b.resolveGateway(k)
		if f.gwCache == nil {
			f.gwCache = make(map[gwKey]gwRes)
		}
		f.gwCache[k] = res
	}
	if res.err != nil {
		return fmt.Errorf("route %s: %w", routeName(r), res.err)
	}
	nh.Port = res.port
	return nil
}

func (b *Batch) resolveGateway(k gwKey) gwRes {
	f := b.f
	key := Key{Dst: k.gw, Iif: -1, Oif: k.port}
	var res Result
	ps := f.portSnap.Load()
	found := false
	try := func(id uint32) {
		if found {
			return
		}
		t, ok := f.tables[id]
		if !ok {
			return
		}
		root := b.tx(t).root
		if tableLookup(root, &key, k.scope+1, ps, true, false, &res) && res.Err == nil {
			found = true
		}
	}
	if k.table != TableMain {
		try(k.table)
	}
	try(TableLocal)
	try(TableMain)
	try(TableDefault)
	bad := fmt.Errorf("nexthop has invalid gateway %s", netaddr.IPv4String(k.gw))
	if !found || res.Type != Unicast && res.Type != Local {
		return gwRes{err: bad}
	}
	if res.Nexthop == nil || res.Nexthop.Port < 0 {
		return gwRes{err: fmt.Errorf("no egress device for nexthop gateway %s", netaddr.IPv4String(k.gw))}
	}
	return gwRes{port: res.Nexthop.Port}
}

// addrType is inet_addr_type on the batch's view of the local table.
func (b *Batch) addrType(a uint32) Type {
	root := b.tx(b.f.local).root
	if l := root.below(a, 33, true); l != nil {
		return l.route(0).Type
	}
	return Unicast
}

func (b *Batch) isLocal(a uint32) bool { return b.addrType(a) == Local }

// del removes the first alias matching r as fib_table_delete does.
func (b *Batch) del(r *Route) error {
	t, ok := b.f.tables[r.Table]
	if !ok {
		return fmt.Errorf("route %s: %w", routeName(r), ErrNoRoute)
	}
	x := b.tx(t)
	l := x.get(r.Dst, r.Len)
	if l == nil {
		return fmt.Errorf("route %s: %w", routeName(r), ErrNoRoute)
	}
	parsed := r.given&givenParsed != 0
	anyType := r.Type == 0 || parsed && r.given&givenType == 0
	anyScope := !parsed && r.Scope == 0 || r.Scope == ScopeNowhere || parsed && r.given&givenScope == 0
	anyProto := r.Proto == 0 || parsed && r.given&givenProto == 0
	victim := -1
	for i := range l.count() {
		a := l.route(i)
		if a.Tos != r.Tos {
			continue
		}
		if !anyType && a.Type != r.Type || !anyScope && a.Scope != r.Scope {
			continue
		}
		if r.Prefsrc != 0 && a.Prefsrc != r.Prefsrc || !anyProto && a.Proto != r.Proto {
			continue
		}
		if r.Priority != 0 && a.Priority != r.Priority {
			continue
		}
		if !nexthopsMatch(r.Nexthops, a.Nexthops) {
			continue
		}
		if r.MTU != 0 && a.MTU != r.MTU {
			continue
		}
		victim = i
		break
	}
	if victim < 0 {
		return fmt.Errorf("route %s: %w", routeName(r), ErrNoRoute)
	}
	gone := l.route(victim)
	if l.count() == 1 {
		b.put(x, r.Dst, r.Len, nil)
	} else {
		routes := l.appendRoutes(make([]*Route, 0, l.count()))
		routes = append(routes[:victim], routes[victim+1:]...)
		b.put(x, r.Dst, r.Len, newLeaf(r.Dst, r.Len, routes))
	}
	t.count--
	b.release(gone)
	if gone.Scope != ScopeUniverse || t.id == TableLocal {
		b.f.gwCache = nil
	}
	return nil
}

// nexthopsMatch is fib_nh_match: no nexthop given matches any; one matches
// a single path by port and gateway where given; several must all match.
func nexthopsMatch(want, have []*Nexthop) bool {
	if len(want) == 0 {
		return true
	}
	if len(want) == 1 && len(have) == 1 {
		w, h := want[0], have[0]
		return (w.Port < 0 || w.Port == h.Port) && (w.Gateway == 0 || w.Gateway == h.Gateway)
	}
	if len(want) != len(have) {
		return false
	}
	for i := range want {
		w, h := want[i], have[i]
		if w.Port >= 0 && w.Port != h.Port || w.Gateway != h.Gateway || w.Weight > 0 && w.Weight != h.Weight {
			return false
		}
	}
	return true
}

// Routes returns the routes of a table as `ip route show table` lists them.
func (f *FIB) Routes(id uint32) []*Route {
	f.mu.Lock()
	t, ok := f.tables[id]
	f.mu.Unlock()
	if !ok {
		return nil
	}
	ls := collect(t.root.Load(), nil, false)
	sortShow(ls)
	out := make([]*Route, 0, len(ls))
	for _, l := range ls {
		out = l.appendRoutes(out)
	}
	return out
}

// Tables lists the ids of the tables that exist.
func (f *FIB) Tables() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []uint32
	for id := range f.tables {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// Flush removes every route of a table and returns how many it removed.
func (f *FIB) Flush(id uint32) (int, error) {
	n := 0
	err := f.Batch(func(b *Batch) error {
		t, ok := f.tables[id]
		if !ok {
			return fmt.Errorf("table %s: no such table", TableName(id))
		}
		x := b.tx(t)
		for _, l := range collect(x.root, nil, true) {
			for i := range l.count() {
				b.release(l.route(i))
				n++
			}
		}
		if n > 0 {
			for _, n := range x.priv {
				n.next = nil // the old trie's pending changes go with it
			}
			x.priv = x.priv[:0]
			x.root = newRoot()
			x.changed, b.changed = true, true
			if b.f.fw.plan.has(t.id) {
				b.dirty.markAll()
			}
			t.count = 0
			b.f.gwCache = nil
		}
		return nil
	})
	return n, err
}

// Count returns the number of routes in a table.
func (f *FIB) Count(id uint32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.tables[id]; ok {
		return t.count
	}
	return 0
}
