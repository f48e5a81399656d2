package fib

import (
	"math/rand"
	"slices"
	"strconv"
	"testing"
	"unsafe"

	"ferry/netaddr"
)

// An answer is half a cache line.
func TestMergedSizes(t *testing.T) {
	if a := unsafe.Sizeof(answer{}); a != 32 {
		t.Errorf("answer %d bytes", a)
	}
}

// TestMergedDifferential checks the merged fast path of the default rules
// (LookupBulk) and the single lookups against the exact rule
// walk, which a never-matching custom rule forces, over random changes of
// the local, main and default tables with every route type, TOS routes,
// metrics, multipath and ports going down.
func TestMergedDifferential(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	f := testFIB(t)
	f.fw.slack = 1 // compact often
	must(t, f.SetPort(2, "port2", 1500, true))
	must(t, f.AddAddress(2, ip("10.0.0.1"), 8))
	must(t, f.AddAddress(2, ip("128.0.0.1"), 16))
	tables := []uint32{TableLocal, TableMain, TableMain, TableMain, TableDefault}
	types := []Type{Unicast, Unicast, Unicast, Blackhole, Unreachable, Prohibit, Throw, Local, Broadcast, Anycast}
	ops, checks := 3000, 400
	if testing.Short() || raceEnabled {
		ops, checks = 800, 150
	}
	dummy := Rule{Priority: 5, IifName: "nope", Action: ActionLookup, Table: 100}
	keys := make([]Key, checks)
	got := make([]Result, checks)
	bulk := make([]Result, checks)
	out := make([]Result, checks)
	okeys := make([]Key, checks)
	dsts, srcs := make([]uint32, checks), make([]uint32, checks)
	refs := make([]*Result, checks)
	stats := map[string]int{}
	for i := 0; i < ops; i++ {
		p := Prefix{Len: uint8(rng.Intn(33))}
		p.Addr = overlapAddr(rng) & netaddr.Mask(p.Len)
		typ := types[rng.Intn(len(types))]
		r := Route{Table: tables[rng.Intn(len(tables))], Dst: p.Addr, Len: p.Len, Type: typ,
			Priority: uint32(rng.Intn(3)), MTU: uint32(1000 + rng.Intn(100))}
		if rng.Intn(5) == 0 {
			r.Tos = 0x10
		}
		switch typ {
		case Unicast, Local, Broadcast, Anycast:
			r.Scope = ScopeLink
			if typ == Local {
				r.Scope = ScopeHost
			}
			r.Nexthops = []*Nexthop{{Port: rng.Intn(3), Weight: 1}}
			if typ == Unicast && rng.Intn(4) == 0 {
				r.Nexthops = append(r.Nexthops, &Nexthop{Port: rng.Intn(3), Weight: 2})
			}
		}
		switch rng.Intn(4) {
		case 0:
			_ = f.Del(Route{Table: r.Table, Dst: p.Addr, Len: p.Len, Tos: r.Tos})
		case 1:
			_ = f.Replace(r)
		default:
			_ = f.Add(r)
		}
		// Port changes move the answers: liveness, MTU, source addresses.
		switch rng.Intn(100) {
		case 0:
			port := rng.Intn(3)
			must(t, f.SetPort(port, f.PortName(port), 1500, rng.Intn(2) == 0))
		case 1:
			port := rng.Intn(3)
			must(t, f.SetPort(port, f.PortName(port), 1280+rng.Intn(8000), true))
		case 2:
			a := ip("172.16.0.1") + uint32(rng.Intn(4))<<8
			port := rng.Intn(3)
			if err := f.AddAddress(port, a, 24); err != nil {
				_ = f.DelAddress(port, a, 24)
			}
		}
		if i%50 != 49 {
			continue
		}
		for j := range keys {
			d := overlapAddr(rng)
			if rng.Intn(4) == 0 {
				d = ip("10.0.0.0") | rng.Uint32()&0xffffff
			}
			switch rng.Intn(16) {
			case 0:
				d = ip("127.0.0.1") | rng.Uint32()&0xffff
			case 1:
				d = ip("224.0.0.0") | rng.Uint32()&0x1fffffff
			case 2:
				d = rng.Uint32() & 0xffffff
			}
			keys[j] = Key{Dst: d, Src: ip("192.0.2.9"), Iif: 0, Oif: -1, Hash: rng.Uint32()}
			if rng.Intn(3) == 0 {
				keys[j].Tos = 0x10
			}
			if rng.Intn(16) == 0 {
				keys[j].Src = ip("224.0.0.5")
			}
			dsts[j], srcs[j] = keys[j].Dst, keys[j].Src
		}
		if f.HasCustomRules() {
			t.Fatal("custom rules")
		}
		checkAnswers(t, f, rng, stats)
		for j := range keys {
			f.Lookup(&keys[j], &got[j])
			k := keys[j]
			k.Iif, k.Src = -1, 0
			if rng.Intn(4) == 0 {
				k.Oif = rng.Intn(3)
			}
			okeys[j] = k
			f.LookupOutput(&okeys[j], &out[j])
		}
		f.LookupBulk(keys, bulk)
		byAddr(f, dsts, srcs, refs)
		must(t, f.AddRule(dummy))
		for j := range keys {
			var want Result
			f.LookupExact(&keys[j], &want)
			stats[want.Type.String()+errText0(want.Err)]++
			// The bulk lookup's answers carry no route.
			wantBulk := want
			if bulk[j].Route == nil {
				wantBulk.Route = nil
			}
			// Nor do the single lookups' where the structure answered.
			wantGot := want
			if got[j].Route == nil {
				wantGot.Route = nil
			}
			if d := resultDiff(&got[j], &wantGot) + resultDiff(&bulk[j], &wantBulk); d != "" {
				t.Fatalf("op %d: lookup %+v:%s\n fast %+v\n bulk %+v\n want %+v", i, keys[j], d, got[j], bulk[j], want)
			}
			// The address lookup answers what it can, for any TOS and input port.
			if r := refs[j]; r != nil {
				stats["by address"]++
				wantBulk.Route = nil
				if d := resultDiff(r, &wantBulk); d != "" {
					t.Fatalf("op %d: lookup by address %+v:%s\n got %+v\n want %+v", i, keys[j], d, *r, wantBulk)
				}
			}
			f.LookupOutputExact(&okeys[j], &want)
			if out[j].Route == nil {
				stats["output by answer"]++
				want.Route = nil
			}
			if d := resultDiff(&out[j], &want); d != "" {
				t.Fatalf("op %d: output %+v:%s\n fast %+v\n want %+v", i, okeys[j], d, out[j], want)
			}
		}
		// With a rule that has a selector, the address alone tells only
		// for the keys it does not match.
		v := f.InputView()
		vals := make([]uint16, len(dsts))
		v.Vals(dsts, vals)
		for j := range keys {
			if v.NeedsKey(&keys[j]) {
				t.Fatalf("op %d: a rule for port nope matches %+v", i, keys[j])
			}
			if kv := v.KeyVal(&keys[j]); kv != vals[j] {
				t.Fatalf("op %d: %+v: value %d by address, %d by key", i, keys[j], vals[j], kv)
			}
		}
		must(t, f.DelRule(dummy))
	}
	t.Logf("results: %v; %d full builds, %d compactions", stats, f.fw.rebuilds, f.fw.compactions)
	if f.fw.compactions == 0 {
		t.Error("no compaction")
	}
	if stats["answer"] == 0 || stats["answer multipath"] == 0 || stats["answer slow"] == 0 || stats["by address"] == 0 || stats["output by answer"] == 0 {
		t.Errorf("answer table barely exercised: %v", stats)
	}
}

// resultDiff names the fields in which got differs from want.
func resultDiff(got, want *Result) string {
	s := ""
	if got.Type != want.Type {
		s += " Type"
	}
	if got.Table != want.Table {
		s += " Table"
	}
	if got.Route != want.Route {
		s += " Route"
	}
	if got.Nexthop != want.Nexthop {
		s += " Nexthop"
	}
	if got.Prefsrc != want.Prefsrc {
		s += " Prefsrc"
	}
	if got.MTU != want.MTU {
		s += " MTU"
	}
	if got.Err != want.Err {
		s += " Err"
	}
	if s == "" && *got != *want {
		s = " (other)"
	}
	return s
}

// checkAnswers checks the published answers: for the routes of local,
// main and default, where their answer tells, the Result it gives for
// output and input lookups (with several flow hashes) must be matchRoute's.
func checkAnswers(t *testing.T, f *FIB, rng *rand.Rand, stats map[string]int) {
	t.Helper()
	fs := f.fast.Load()
	ps := f.portSnap.Load()
	if fs.ans[0] != noRoute {
		t.Fatalf("answer 0 %+v", fs.ans[0])
	}
	var rts []*Route
	for _, id := range []uint32{TableLocal, TableMain, TableDefault} {
		rts = append(rts, f.Routes(id)...)
	}
	for _, rt := range rts {
		i, ok := f.fw.ansIdx[ansKeyOf(rt)]
		if !ok {
			continue // not the first route of its prefix
		}
		h := fs.ans[i]
		switch {
		case h.flags&ansSlow != 0:
			stats["answer slow"]++
		case h.flags&ansMulti != 0:
			stats["answer multipath"]++
		default:
			stats["answer"]++
		}
		for _, hash := range []uint32{0, rng.Uint32(), rng.Uint32(), ^uint32(0)} {
			k := Key{Dst: rt.Dst, Iif: -1, Oif: -1, Hash: hash}
			a := fs.ansFor(i, &k)
			if a == nil {
				continue
			}
			var got, want Result
			a.fill(rt, a.err, &got)
			if !matchRoute(rt, &k, ScopeUniverse, ps, false, &want) || want.Err == errThrow {
				t.Fatalf("answer %+v for route %v, which does not match", *a, *rt)
			}
			if d := resultDiff(&got, &want); d != "" {
				t.Fatalf("answer for route %v hash %#x:%s\n got %+v\n want %+v", *rt, hash, d, got, want)
			}
			a.fill(rt, a.inErr, &got)
			inputFinish(&want)
			if d := resultDiff(&got, &want); d != "" {
				t.Fatalf("input answer for route %v hash %#x:%s\n got %+v\n want %+v", *rt, hash, d, got, want)
			}
			// With an output port, only the walk tells.
			k.Oif = 0
			if a.nh != nil && fs.ansFor(i, &k) != nil {
				t.Fatalf("answer for route %v with an output port", *rt)
			}
		}
	}
}

// valueOf is the value the published merged structure holds for a prefix
// whose first route is r (tests).
func (w *fastWriter) valueOf(r *Route) uint16 {
	i, ok := w.ansIdx[ansKeyOf(r)]
	if !ok || i >= valSlow {
		return valSlow
	}
	return uint16(i)
}

func errText0(err error) string {
	if err == nil {
		return ""
	}
	return " " + errText(err)
}

// byAddr is what the forwarding path asks first: refs[i] is InputView's
// Result for dsts[i], nil where a full key is needed.
func byAddr(f *FIB, dsts, srcs []uint32, refs []*Result) {
	v := f.InputView()
	vals := make([]uint16, len(dsts))
	v.Vals(dsts, vals)
	for i, d := range dsts {
		refs[i] = v.Result(vals[i], d, srcs[i])
	}
}

// A view pinned before a new answer was made reads, through an entry a
// later single change stored in place in a chunk it shares, a value past
// its own answers: it must leave it to the full lookup, not index past
// them (rule 3 of the invariants in fastupdate.go).
func TestOlderViewSeesNewerAnswerInPlace(t *testing.T) {
	f := New(nil, 1)
	if err := f.SetPort(0, "port0", 1500, true); err != nil {
		t.Fatal(err)
	}
	if err := f.AddAddress(0, ip("192.0.2.1"), 24); err != nil {
		t.Fatal(err)
	}
	route := func(dst, gw string) Route {
		return Route{Table: TableMain, Dst: ip(dst), Len: 24, Type: Unicast, Nexthops: []*Nexthop{{Gateway: ip(gw), Port: 0, Weight: 1}}}
	}
	for _, d := range []string{"10.1.1.0", "10.2.1.0", "11.3.1.0"} {
		if err := f.Add(route(d, "192.0.2.2")); err != nil {
			t.Fatal(err)
		}
	}
	old := f.InputView()
	// Two blocks of chunk 10 in one batch (a new snapshot, which copies
	// chunk 10) with a new gateway (a new answer); then one block of
	// chunk 11, which the old view shares, alone (stored in place) with
	// that gateway.
	f.Batch(func(b *Batch) error {
		b.Add(route("10.1.2.0", "192.0.2.7"))
		b.Add(route("10.2.2.0", "192.0.2.7"))
		return nil
	})
	if err := f.Add(route("11.3.2.0", "192.0.2.7")); err != nil {
		t.Fatal(err)
	}
	val := old.Val(ip("11.3.2.9"))
	if r := old.Shared(val); r != nil && (r.Nexthop == nil || r.Nexthop.Gateway != ip("192.0.2.7")) {
		t.Fatalf("the older view answers %+v for 11.3.2.9", r)
	}
	var k Key
	k.Dst, k.Oif = ip("11.3.2.9"), -1
	var spill Result
	if r := old.Lookup(&k, val, &spill); r.Nexthop != nil && r.Nexthop.Gateway != ip("192.0.2.7") {
		t.Fatalf("the older view's lookup answers %+v", r)
	}
}

// partNode, the node of a block one part answers for alone, is the node
// makeNode makes from that part's 256 slots expanded, word for word.
func TestPartNodeIsExpandedNode(t *testing.T) {
	f := testFIB(t)
	rnd := rand.New(rand.NewSource(7))
	gws := []string{"192.0.2.2", "192.0.2.3", "198.51.100.2"}
	must(t, f.Batch(func(b *Batch) error {
		for i := 0; i < 4000; i++ {
			plen := 17 + rnd.Intn(8)
			if i%200 == 0 {
				plen = 25 + rnd.Intn(8) // children in a few blocks: not one part's
			}
			a := 10<<24 | uint32(rnd.Intn(1<<20))<<4
			a &= ^uint32(0) << (32 - plen)
			r, err := ParseRoute([]string{netaddr.IPv4String(a) + "/" + strconv.Itoa(plen), "via", gws[rnd.Intn(len(gws))]}, f)
			if err != nil {
				return err
			}
			if err := b.Apply(RouteCmd{Op: OpReplace, Route: r}); err != nil {
				return err
			}
		}
		return nil
	}))
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &f.fw
	w.next, w.ps = &w.cur, f.portSnap.Load()
	defer func() { w.next, w.ps = nil, nil }()
	fs := w.next
	root := f.main.root.Load().view(false)
	same, skipped := 0, 0
	n1 := root.kid(10) // every route is in 10/8
	if n1 == nil {
		t.Fatal("no node for 10/8")
	}
	for lo := uint(0); lo < 256; lo++ {
		n2 := n1.p.Load().kid(lo)
		if n2 == nil {
			continue
		}
		p := n2.p.Load()
		if onlyPart(&[maxMerge]*part{p}, 0) == nil {
			skipped++
			continue
		}
		def := uint16(lo) // any def: both take it as given
		var v [256]uint16
		w.expand(p, 2, &v)
		o1 := w.partNode(p, def)
		o2 := w.makeNode(&v, def, &[4]uint64{}, 0)
		n := nodeLen(fs.nodes[o1:])
		if got, want := fs.nodes[o1:int(o1)+n], fs.nodes[o2:int(o2)+nodeLen(fs.nodes[o2:])]; !slices.Equal(got, want) {
			t.Fatalf("block 10.%d: partNode\n%x\nmakeNode\n%x", lo, got, want)
		}
		same++
	}
	if same < 200 || skipped == 0 {
		t.Fatalf("%d blocks compared, %d with children skipped: the table does not cover both", same, skipped)
	}
}
