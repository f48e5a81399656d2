package fib

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"unsafe"

	"ferry/internal/bgptable"
	"ferry/netaddr"
)

// TestWalkLayout pins the offsets the assembly walk reads walk by.
func TestWalkLayout(t *testing.T) {
	var w walk
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"top", unsafe.Offsetof(w.top), 0}, {"chunks", unsafe.Offsetof(w.chunks), 8},
		{"nodes", unsafe.Offsetof(w.nodes), 16}, {"dsts", unsafe.Offsetof(w.dsts), 24},
		{"out", unsafe.Offsetof(w.out), 32}, {"n", unsafe.Offsetof(w.n), 40},
		{"ent", unsafe.Offsetof(w.ent), 48}, {"at", unsafe.Offsetof(w.at), 56},
		{"kid", unsafe.Offsetof(w.kid), 64},
	} {
		if c.got != c.want {
			t.Errorf("walk.%s at offset %d, the assembly reads it at %d", c.name, c.got, c.want)
		}
	}
}

// walkFIB is a BGP-like table (built once) with a few longer and shorter
// prefixes added, so that walks meet every kind of entry: top-level values, node
// defaults (valNone), runs in both of a node's lines, and child blocks.
var walkTable struct {
	once sync.Once
	f    *FIB
}

func walkFIB(t testing.TB) *FIB {
	walkTable.once.Do(func() { walkTable.f = buildWalkFIB(t) })
	if walkTable.f == nil {
		t.Fatal("no table")
	}
	return walkTable.f
}

func buildWalkFIB(t testing.TB) *FIB {
	ps := bgptable.Generate(50000, 11)
	rng := rand.New(rand.NewSource(5))
	for i := 0; i < 2000; i++ {
		a := rng.Uint32()
		l := uint8(8 + rng.Intn(25))
		ps = append(ps, Prefix{Addr: a & netaddr.Mask(l), Len: l})
	}
	return buildBGP(t, dedupe(ps))
}

func dedupe(ps []Prefix) []Prefix {
	seen := make(map[Prefix]bool, len(ps))
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// walkBoth walks dsts with walkNodes and with walkNodesGo and fails on
// any difference in the values stored or the child blocks listed, then
// checks the whole bulk walk against single lookups.
func walkBoth(t testing.TB, fs *fsnap, dsts []uint32) {
	var res [2]struct {
		out  [bulkN]uint16
		kid  [bulkN]uint8
		nkid int
	}
	for r := range res {
		var ent [bulkN]uint32
		var at [bulkN]unsafe.Pointer
		w := walk{top: &fs.top, chunks: unsafe.Pointer(unsafe.SliceData(fs.chunks)),
			nodes: unsafe.Pointer(unsafe.SliceData(fs.nodes)), dsts: &dsts[0], out: &res[r].out[0],
			n: len(dsts), ent: &ent, at: &at, kid: &res[r].kid}
		// Called directly: through a function value, w and its arrays would
		// move to the heap, where the assembly's pointer stores want barriers.
		if r == 0 {
			res[r].nkid = walkNodes(&w)
		} else {
			res[r].nkid = walkNodesGo(&w)
		}
	}
	a, g := &res[0], &res[1]
	if a.nkid != g.nkid || a.kid != g.kid {
		t.Fatalf("child blocks listed: %v, compiled walk %v", a.kid[:a.nkid], g.kid[:g.nkid])
	}
	kid := map[uint8]bool{}
	for _, i := range a.kid[:a.nkid] {
		kid[i] = true
	}
	for i := range dsts {
		if !kid[uint8(i)] && a.out[i] != g.out[i] {
			t.Fatalf("%s: value %d, compiled walk %d", netaddr.IPv4String(dsts[i]), a.out[i], g.out[i])
		}
	}
	var vals [bulkN]uint16
	fs.lpmBulk(dsts, vals[:])
	for i, d := range dsts {
		if want := fs.lpm(d); vals[i] != want {
			t.Fatalf("%s: bulk walk %d, single lookup %d", netaddr.IPv4String(d), vals[i], want)
		}
	}
}

func TestWalkNodesMatchesCompiled(t *testing.T) {
	fs := walkFIB(t).fast.Load()
	rng := rand.New(rand.NewSource(9))
	ps := bgptable.Generate(50000, 11)
	for round := 0; round < 200; round++ {
		dsts := make([]uint32, 1+rng.Intn(bulkN))
		for i := range dsts {
			switch rng.Intn(3) {
			case 0:
				dsts[i] = rng.Uint32()
			default: // within a table prefix
				p := ps[rng.Intn(len(ps))]
				dsts[i] = p.Addr | rng.Uint32()&^netaddr.Mask(p.Len)
			}
		}
		walkBoth(t, fs, dsts)
	}
}

// FuzzWalk walks the addresses of any input (four bytes each, up to a
// batch) both ways.
func FuzzWalk(f *testing.F) {
	f.Add([]byte{10, 0, 0, 1, 192, 168, 1, 1, 255, 255, 255, 255})
	f.Add(make([]byte, 4*bulkN))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := min(len(b)/4, bulkN)
		if n == 0 {
			return
		}
		dsts := make([]uint32, n)
		for i := range dsts {
			dsts[i] = binary.BigEndian.Uint32(b[4*i:])
		}
		walkBoth(t, walkFIB(t).fast.Load(), dsts)
	})
}

// TestOldSnapshotAfterKidsMoved: a batch whose child blocks outgrow their
// arena moves it; a later single change, stored in place, must not reach
// a reader still on a snapshot from before, which would follow the new
// entry to child blocks past its own arena's end.
func TestOldSnapshotAfterKidsMoved(t *testing.T) {
	f := testFIB(t)
	f.fw.deferOff = true // the batch's blocks are built, not deferred
	must(t, run(t, f, "add", "10.0.0.0/8 via 192.0.2.2"))
	old := f.fast.Load()
	probe := ip("11.7.1.200")
	want := old.lpm(probe)
	// More /25s in distinct /16 blocks (of 10/8) than the child arena has
	// room for.
	extra := cap(old.kids) - len(old.kids)
	must(t, f.Batch(func(b *Batch) error {
		for i := 0; i <= extra/256; i++ {
			r, err := ParseRoute([]string{fmt.Sprintf("10.%d.%d.0/25", i>>8&255, i&255), "via", "192.0.2.2"}, f)
			if err != nil {
				return err
			}
			if err := b.Add(r); err != nil {
				return err
			}
		}
		return nil
	}))
	if mid := f.fast.Load(); sameArena(mid.kids, old.kids) {
		t.Fatal("the child block arena did not move: the test does not test")
	}
	// One route with a child block in 11/8, whose chunk the batch left.
	must(t, run(t, f, "add", "11.7.1.128/25 via 192.0.2.2"))
	if got := f.fast.Load().lpm(probe); got == want {
		t.Fatalf("the change is not seen by the current snapshot")
	}
	if got := old.lpm(probe); got != want {
		t.Fatalf("a reader of the snapshot from before both changes finds %d for %s, not its %d", got, netaddr.IPv4String(probe), want)
	}
}

// TestWalkSmallTable: with prefixes of /16 and shorter only, every
// top-level entry is a value; a single longer prefix puts a node among
// them.
func TestWalkSmallTable(t *testing.T) {
	f := testFIB(t)
	must(t, run(t, f, "add", "default via 192.0.2.2"))
	must(t, run(t, f, "add", "10.0.0.0/8 via 198.51.100.2"))
	must(t, run(t, f, "add", "172.16.0.0/12 via 198.51.100.3"))
	rng := rand.New(rand.NewSource(3))
	dsts := make([]uint32, bulkN)
	for i := range dsts {
		dsts[i] = rng.Uint32()
	}
	walkBoth(t, f.fast.Load(), dsts)
	must(t, run(t, f, "add", "10.1.2.0/24 via 192.0.2.3"))
	dsts[77] = ip("10.1.2.3")
	walkBoth(t, f.fast.Load(), dsts)
	if fs := f.fast.Load(); fs.lpm(dsts[77]) == fs.lpm(ip("10.9.9.9")) {
		t.Fatal("10.1.2.3 is answered as the /8: the test does not test")
	}
}
