package fib

import (
	"errors"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"ferry/cache"
	"ferry/netaddr"
)

// ref is the brute-force reference: every prefix in a per-length set,
// longest match by trying each length.
type ref struct {
	m [33]map[uint32]uint32 // prefix -> MTU, which identifies the version
	n int
}

func newRef() *ref {
	r := &ref{}
	for i := range r.m {
		r.m[i] = map[uint32]uint32{}
	}
	return r
}

func (r *ref) lpm(a uint32) (Prefix, uint32, bool) {
	for l := 32; l >= 0; l-- {
		if v, ok := r.m[l][a&netaddr.Mask(uint8(l))]; ok {
			return Prefix{Addr: a & netaddr.Mask(uint8(l)), Len: uint8(l)}, v, true
		}
	}
	return Prefix{}, 0, false
}

func diffFIB(t testing.TB) *FIB {
	f := New(&cache.GenID{}, 1)
	must(t, f.SetPort(0, "port0", 1500, true))
	return f
}

func diffRoute(p Prefix, mtu uint32) Route {
	return Route{Table: TableMain, Dst: p.Addr, Len: p.Len, Type: Unicast, Scope: ScopeLink,
		Proto: ProtoStatic, MTU: mtu, Nexthops: []*Nexthop{{Port: 0, Weight: 1}}}
}

// overlapAddr draws addresses from few values per byte so prefixes nest.
func overlapAddr(rng *rand.Rand) uint32 {
	vals := [...]uint32{0, 1, 2, 0x80, 0xc0, 0xff}
	var a uint32
	for i := 0; i < 4; i++ {
		var b uint32
		if rng.Intn(4) == 0 {
			b = uint32(rng.Intn(256))
		} else {
			b = vals[rng.Intn(len(vals))]
		}
		a = a<<8 | b
	}
	return a
}

// check compares the trie's answer for a with the reference, through both
// the readers' compressed lookup and the writers' prefix-list walk.
func check(t testing.TB, f *FIB, rf *ref, a uint32) {
	ps := f.portSnap.Load()
	root := f.main.root.Load()
	want, wmtu, wok := rf.lpm(a)
	for _, fast := range []bool{true, false} {
		var res Result
		k := Key{Dst: a, Iif: -1, Oif: -1}
		ok := tableLookup(root, &k, 0, ps, false, fast, &res)
		if ok != wok || ok && (res.Route.Dst != want.Addr || res.Route.Len != want.Len || res.MTU != wmtu) {
			got := "none"
			if ok {
				got = Prefix{Addr: res.Route.Dst, Len: res.Route.Len}.String()
			}
			t.Fatalf("lookup %s (fast %v): got %s mtu %d, want %v %s mtu %d", netaddr.IPv4String(a), fast, got, res.MTU, wok, want, wmtu)
		}
	}
	// The merged structure of the default rules (local and default are
	// empty here) and its bulk walk give the answer of the prefix's first
	// route, or leave a block whose build is deferred to the walk above.
	// (Locked: no deferred build runs meanwhile.)
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := f.fast.Load()
	deferred := f.fw.pending.hasBlock(a >> 16)
	var want0 uint16
	if l := root.lpm(a); l != nil {
		want0 = f.fw.valueOf(l.route(0))
	}
	var vals [bulkN]uint16
	fs.lpmBulk([]uint32{a ^ 0x01000000, a, a ^ 0x80}, vals[:])
	for _, v := range []uint16{fs.lpm(a), vals[1]} {
		if v != want0 && !(v == valSlow && deferred) {
			t.Fatalf("merged lookup %s: answer %d, want %d (%v %s)", netaddr.IPv4String(a), v, want0, wok, want)
		}
	}
}

// randomOps applies n random changes to f and rf, checking lookups after
// each; apply is f.Apply or a batch's Apply.
func randomOps(t testing.TB, rng *rand.Rand, f *FIB, rf *ref, apply func(RouteCmd) error, n int, checkEach bool) {
	for i := 0; i < n; i++ {
		p := Prefix{Len: uint8(rng.Intn(33))}
		p.Addr = overlapAddr(rng) & netaddr.Mask(p.Len)
		mtu := uint32(1000 + rng.Intn(64))
		cur, exists := rf.m[p.Len][p.Addr]
		var op Op
		switch x := rng.Intn(10); {
		case x < 4:
			op = OpAdd
		case x < 7:
			op = OpDel
		case x < 9:
			op = OpReplace
		default:
			op = OpChange
		}
		if op == OpDel {
			mtu = 0
		}
		err := apply(RouteCmd{op, diffRoute(p, mtu)})
		switch {
		case op == OpAdd && exists, op == OpDel && !exists:
			if err == nil {
				t.Fatalf("%v %v: no error", op, p)
			}
			continue
		case op == OpChange && !exists:
			if !errors.Is(err, ErrNoEntry) {
				t.Fatalf("change %v: %v", p, err)
			}
			continue
		case err != nil:
			t.Fatalf("%v %v: %v", op, p, err)
		}
		switch op {
		case OpDel:
			delete(rf.m[p.Len], p.Addr)
			rf.n--
		default:
			if !exists {
				rf.n++
			}
			rf.m[p.Len][p.Addr] = mtu
		}
		_ = cur
		if checkEach {
			check(t, f, rf, p.Addr)
			for j := 0; j < 4; j++ {
				check(t, f, rf, overlapAddr(rng))
			}
		}
	}
}

func verifyAll(t testing.TB, f *FIB, rf *ref, rng *rand.Rand, lookups int) {
	if got := len(f.Routes(TableMain)); got != rf.n || f.Count(TableMain) != rf.n {
		t.Fatalf("table holds %d routes (count %d), reference %d", got, f.Count(TableMain), rf.n)
	}
	for i := 0; i < lookups; i++ {
		check(t, f, rf, overlapAddr(rng))
	}
	// Bulk walks of full batches.
	fs := f.fast.Load()
	var vals [bulkN]uint16
	for i := 0; i < lookups/bulkN; i++ {
		var as [bulkN]uint32
		for j := range as {
			as[j] = overlapAddr(rng)
		}
		fs.lpmBulk(as[:], vals[:])
		for j, a := range as {
			if vals[j] != fs.lpm(a) {
				t.Fatalf("bulk lookup %s: %v, single %v", netaddr.IPv4String(a), vals[j], fs.lpm(a))
			}
		}
	}
	for l := range rf.m {
		for a := range rf.m[l] {
			check(t, f, rf, a)
			check(t, f, rf, a|^netaddr.Mask(uint8(l)))
		}
	}
}

func TestTrieDifferential(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	f := diffFIB(t)
	rf := newRef()
	// Each change publishes a new merged structure, which dominates the
	// run time; FuzzTrie explores further.
	ops, lookups := 28000, 10000
	if testing.Short() || raceEnabled {
		ops, lookups = 6000, 3000
	}
	for round := 0; round < 4; round++ {
		randomOps(t, rng, f, rf, f.Apply, ops/4, true)
		verifyAll(t, f, rf, rng, lookups)
	}
	// The same through big batches, published once each, each followed
	// by the compaction a load is followed by: lookups agree right after
	// it, and after the changes that follow it (which copy the compacted
	// arrays before they change them).
	for round := 0; round < 3; round++ {
		must(t, f.Batch(func(b *Batch) error {
			randomOps(t, rng, f, rf, b.Apply, ops, false)
			return nil
		}))
		verifyAll(t, f, rf, rng, lookups)
		before, compactions := f.main.root.Load().p.Load(), f.fw.compactions
		f.fw.scale = 2 // as a load leaves it: the merged structure's arenas are compacted too
		if f.Compact() == 0 || f.main.root.Load().p.Load() == before {
			t.Fatal("compaction copied no part")
		}
		if f.fw.compactions != compactions+1 {
			t.Fatal("the merged structure's arenas were not compacted")
		}
		verifyAll(t, f, rf, rng, lookups)
		randomOps(t, rng, f, rf, f.Apply, ops/20, true)
	}
	// Empty it again: only the root node stays.
	for l := range rf.m {
		for a := range rf.m[l] {
			must(t, f.Del(diffRoute(Prefix{Addr: a, Len: uint8(l)}, 0)))
			delete(rf.m[l], a)
			rf.n--
		}
	}
	verifyAll(t, f, rf, rng, 1000)
	t.Logf("merged structure: %d full builds, %d compactions", f.fw.rebuilds, f.fw.compactions)
	if f.fw.compactions == 0 {
		t.Error("no compaction")
	}
	if root := f.main.root.Load().p.Load(); len(root.kids) != 0 || len(root.pfx) != 0 || len(f.nhs) != 0 {
		t.Errorf("empty table keeps %d kids, %d prefixes, %d nexthop sets", len(root.kids), len(root.pfx), len(f.nhs))
	}
}

func FuzzTrie(fz *testing.F) {
	fz.Add([]byte{0, 10, 0, 0, 0, 8, 0, 10, 1, 0, 0, 16, 1, 10, 0, 0, 0, 8})
	fz.Add([]byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0})
	fz.Fuzz(func(t *testing.T, data []byte) {
		f := diffFIB(t)
		rf := newRef()
		for len(data) >= 6 {
			op := Op(data[0]%4) + OpAdd
			if op == OpAppend {
				op = OpReplace
			}
			plen := data[5] % 33
			a := (uint32(data[1])<<24 | uint32(data[2])<<16 | uint32(data[3])<<8 | uint32(data[4])) & netaddr.Mask(plen)
			mtu := 1000 + uint32(data[0]>>2)
			if op == OpDel {
				mtu = 0
			}
			data = data[6:]
			_, exists := rf.m[plen][a]
			err := f.Apply(RouteCmd{op, diffRoute(Prefix{Addr: a, Len: plen}, mtu)})
			switch {
			case op == OpAdd && exists, op == OpDel && !exists, op == OpChange && !exists:
				if err == nil {
					t.Fatalf("%v %s/%d: no error", op, netaddr.IPv4String(a), plen)
				}
			case err != nil:
				t.Fatalf("%v %s/%d: %v", op, netaddr.IPv4String(a), plen, err)
			case op == OpDel:
				delete(rf.m[plen], a)
				rf.n--
			default:
				if !exists {
					rf.n++
				}
				rf.m[plen][a] = mtu
			}
			check(t, f, rf, a)
			check(t, f, rf, a|^netaddr.Mask(plen))
			check(t, f, rf, a^0x00808080)
		}
		verifyAll(t, f, rf, rand.New(rand.NewSource(int64(len(data)))), 200)
	})
}

// Readers running during changes never see a change half applied.
//
// Bulk lookups read the merged structure, published once per batch: 10.1/16
// and 10/8 swap places in one batch, so a bulk lookup in 10.1/16 must always
// find one of them. They also look into the churn below, whose single
// changes the merged structure stores in place.
//
// Single lookups walk the tries, where a batch is published node by node
// and each change is whole: 20/8 stays while 20.1/16, 20.1.2/24 and
// 20.1.2.128/25 (its own trie node, made and removed) come and go and
// change their MTU, so a lookup in 20.1.2.128/25 always finds a route,
// whose MTU is the one of that route's version.
func TestConcurrentReaders(t *testing.T) {
	f := diffFIB(t)
	p8, p16 := Prefix{Addr: ip("10.0.0.0"), Len: 8}, Prefix{Addr: ip("10.1.0.0"), Len: 16}
	must(t, f.Add(diffRoute(p16, 1016)))
	churn := []Prefix{{Addr: ip("20.1.0.0"), Len: 16}, {Addr: ip("20.1.2.0"), Len: 24}, {Addr: ip("20.1.2.128"), Len: 25}}
	must(t, f.Add(diffRoute(Prefix{Addr: ip("20.0.0.0"), Len: 8}, 2080)))
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups atomic.Int64
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		stop.Store(true)
	}
	wg.Add(2)
	go func() { // bulk
		defer wg.Done()
		rng := rand.New(rand.NewSource(1))
		keys := make([]Key, 32)
		res := make([]Result, 32)
		n := int64(0)
		for !stop.Load() {
			for i := range keys {
				keys[i] = Key{Dst: ip("10.1.0.0") | uint32(rng.Intn(65536)), Src: ip("192.0.2.1"), Iif: 0, Oif: -1}
				if i&1 != 0 {
					keys[i].Dst = ip("20.1.2.128") | uint32(rng.Intn(128))
				}
			}
			f.LookupBulk(keys, res)
			n += int64(len(keys))
			for i := range res {
				r := &res[i]
				if i&1 == 0 && (r.Err != nil || r.MTU != 1008 && r.MTU != 1016) {
					fail("bulk lookup: half-applied batch seen: %+v", *r)
					return
				}
				// The churn's single changes are stored in place.
				if l := r.MTU/10 - 200; i&1 != 0 && (r.Err != nil || l != 8 && l != 16 && l != 24 && l != 25) {
					fail("bulk lookup %s: half-applied change seen: %+v", netaddr.IPv4String(keys[i].Dst), *r)
					return
				}
			}
		}
		lookups.Add(n)
	}()
	go func() { // single
		defer wg.Done()
		rng := rand.New(rand.NewSource(2))
		var res Result
		n := int64(0)
		for !stop.Load() {
			k := Key{Dst: ip("20.1.2.128") | uint32(rng.Intn(128)), Src: ip("192.0.2.1"), Iif: 0, Oif: -1}
			f.LookupExact(&k, &res)
			n++
			if res.Err != nil || res.Route == nil {
				fail("lookup %s: half-applied change seen: %+v", netaddr.IPv4String(k.Dst), res)
				return
			}
			if res.MTU != res.Route.MTU || res.MTU/10 != 200+uint32(res.Route.Len) {
				fail("lookup %s: inconsistent route: %+v (route %s/%d mtu %d)", netaddr.IPv4String(k.Dst), res, netaddr.IPv4String(res.Route.Dst), res.Route.Len, res.Route.MTU)
				return
			}
		}
		lookups.Add(n)
	}()
	rng := rand.New(rand.NewSource(9))
	on := make([]bool, len(churn))
	iters := 3000
	if raceEnabled {
		iters = 500
	}
	for i := 0; i < iters && !stop.Load(); i++ {
		must(t, f.Batch(func(b *Batch) error {
			if i%2 == 0 {
				must(t, b.Del(diffRoute(p16, 0)))
				must(t, b.Add(diffRoute(p8, 1008)))
			} else {
				must(t, b.Del(diffRoute(p8, 0)))
				must(t, b.Add(diffRoute(p16, 1016)))
			}
			return nil
		}))
		// Several changes in a batch or one each: added, removed, or
		// replaced with another MTU (2000 + 10*length + 0..9).
		must(t, f.Batch(func(b *Batch) error {
			for j := rng.Intn(3); j >= 0; j-- {
				c := rng.Intn(len(churn))
				p := churn[c]
				mtu := 2000 + 10*uint32(p.Len) + uint32(rng.Intn(10))
				switch {
				case !on[c]:
					must(t, b.Add(diffRoute(p, mtu)))
				case rng.Intn(2) == 0:
					must(t, b.Del(diffRoute(p, 0)))
				default:
					must(t, b.Replace(diffRoute(p, mtu)))
					continue
				}
				on[c] = !on[c]
			}
			return nil
		}))
	}
	stop.Store(true)
	wg.Wait()
	if lookups.Load() == 0 {
		t.Error("readers made no lookups")
	}
}

// TestLeafSize keeps a prefix's leaf, its route inside, in the 64-byte
// size class: a full table holds about a million of them.
func TestLeafSize(t *testing.T) {
	if s := unsafe.Sizeof(Route{}); s != 56 {
		t.Errorf("Route is %d bytes, want 56", s)
	}
	if s := unsafe.Sizeof(leaf{}); s != 64 {
		t.Errorf("leaf is %d bytes, want 64", s)
	}
}
