package fib

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"ferry/cache"
	"ferry/internal/bgptable"
	"ferry/netaddr"
)

const benchSize = 900000

var benchGWs = []uint32{0xc0000202, 0xc0000203, 0xc0000204, 0xc0000205, 0xc6336402, 0xc6336403, 0xc6336404, 0xc6336405}

// buildBGP loads ps into a fresh FIB, each prefix via one of eight gateways
// on two ports, in one batch.
func buildBGP(t testing.TB, ps []Prefix) *FIB {
	f := testFIB(t)
	must(t, f.Batch(func(b *Batch) error {
		for i, p := range ps {
			r := Route{Dst: p.Addr, Len: p.Len, Proto: 186, Nexthops: []*Nexthop{{Gateway: benchGWs[i%len(benchGWs)], Port: -1}}}
			if err := b.Add(r); err != nil {
				return err
			}
		}
		return nil
	}))
	return f
}

var bench struct {
	once sync.Once
	f    *FIB
	ps   []Prefix
	rnd  []uint32
	skew []uint32
	gw   []uint8 // each prefix's gateway (index in benchGWs)
}

func benchSetup(b *testing.B) {
	bench.once.Do(func() {
		bench.ps = bgptable.Generate(benchSize, 1)
		bench.f = buildBGP(b, bench.ps)
		bench.gw = make([]uint8, len(bench.ps))
		for i := range bench.gw {
			bench.gw[i] = uint8(i % len(benchGWs))
		}
		bench.rnd = bgptable.Addrs(bench.ps, 1<<20, 2)
		bench.skew = bgptable.SkewedAddrs(bench.ps, 1<<20, 100000, 3)
	})
}

func benchLookup(b *testing.B, addrs []uint32) {
	f := bench.f
	k := Key{Src: 0xc0000263, Iif: 0, Oif: -1}
	var res Result
	miss := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k.Dst = addrs[i&(len(addrs)-1)]
		f.Lookup(&k, &res)
		if res.Err != nil {
			miss++
		}
	}
	b.StopTimer()
	if miss > b.N/100+1 {
		b.Fatalf("%d of %d lookups failed", miss, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlookups/s")
}

func BenchmarkLookup900kRandom(b *testing.B) {
	benchSetup(b)
	benchLookup(b, bench.rnd)
}

// BenchmarkLookupOutput900kRandom is the router's own output lookup
// (ICMP errors, ARP, route get without iif).
func BenchmarkLookupOutput900kRandom(b *testing.B) {
	benchSetup(b)
	f, addrs := bench.f, bench.rnd
	k := Key{Iif: -1, Oif: -1}
	var res Result
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k.Dst = addrs[i&(len(addrs)-1)]
		f.LookupOutput(&k, &res)
		if res.Err != nil {
			b.Fatalf("%s: %v", netaddr.IPv4String(k.Dst), res.Err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlookups/s")
}

func BenchmarkLookup900kSkewed(b *testing.B) {
	benchSetup(b)
	benchLookup(b, bench.skew)
}

// BenchmarkTrieLPM900kRandom is the bare trie walk, without rules and route
// selection.
func BenchmarkTrieLPM900kRandom(b *testing.B) {
	benchSetup(b)
	root := bench.f.main.root.Load()
	addrs := bench.rnd
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if root.lpm(addrs[i&(len(addrs)-1)]) != nil {
			n++
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlookups/s")
}

// BenchmarkLookupBulk900kRandom is LookupBulk in batches of 32 keys.
func BenchmarkLookupBulk900kRandom(b *testing.B) { benchSetup(b); benchBulk(b, bench.rnd, false) }

func BenchmarkLookupBulk900kSkewed(b *testing.B) { benchSetup(b); benchBulk(b, bench.skew, false) }

// BenchmarkLookupBulkRefs900kRandom is the pipeline's lookup: shared
// Results instead of copies.
func BenchmarkLookupBulkRefs900kRandom(b *testing.B) { benchSetup(b); benchBulk(b, bench.rnd, true) }

func benchBulk(b *testing.B, addrs []uint32, refs bool) {
	f := bench.f
	const n = 32
	// One burst of keys, refilled from the address stream as the pipeline
	// fills it from the packets it received.
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = Key{Src: 0xc0000263, Iif: 0, Oif: -1}
	}
	res := make([]Result, n)
	out := make([]*Result, n)
	miss := 0
	b.ResetTimer()
	for i := 0; i < b.N; i += n {
		as := addrs[i&(len(addrs)-1):][:n]
		for j := range keys {
			keys[j].Dst = as[j]
		}
		if refs {
			f.LookupBulkRefs(keys, out, res)
		} else {
			f.LookupBulk(keys, res)
			out[0] = &res[0]
		}
		if out[0].Err != nil {
			miss++
		}
	}
	b.StopTimer()
	if miss > b.N/n/100+1 {
		b.Fatalf("%d of %d lookups failed", miss, b.N/n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlookups/s")
}

// BenchmarkFastLPM900kRandom is the bare walk of the merged structure, one
// address at a time and bulkN at a time.
func BenchmarkFastLPM900kRandom(b *testing.B) {
	benchSetup(b)
	fs := bench.f.fast.Load()
	addrs := bench.rnd
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if fs.lpm(addrs[i&(len(addrs)-1)]) != 0 {
			n++
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlookups/s")
}

func BenchmarkFastLPMBulk900kRandom(b *testing.B) {
	benchSetup(b)
	fs := bench.f.fast.Load()
	addrs := bench.rnd
	var vals [bulkN]uint16
	b.ResetTimer()
	for i := 0; i < b.N; i += bulkN {
		o := i & (len(addrs) - 1)
		fs.lpmBulk(addrs[o:o+bulkN], vals[:])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlookups/s")
}

func BenchmarkBuild900k(b *testing.B) {
	ps := bgptable.Generate(benchSize, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buildBGP(b, ps)
	}
	b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "routes/s")
}

// BenchmarkUpdatesWhileReading replaces routes of the 900k table one
// change per publish while a reader looks up bursts without pause.
func BenchmarkUpdatesWhileReading(b *testing.B) { benchUpdates(b, 1) }

// BenchmarkUpdatesBatchedWhileReading is the same with 64 changes per
// publish, as a routing daemon's burst of changes arrives.
func BenchmarkUpdatesBatchedWhileReading(b *testing.B) { benchUpdates(b, 64) }

func benchUpdates(b *testing.B, per int) {
	benchSetup(b)
	if os.Getenv("GOGC") == "" {
		// As ferryd runs; GOGC=100 in the environment measures Go's default.
		defer debug.SetGCPercent(debug.SetGCPercent(DefaultGCPercent))
	}
	f := bench.f
	var stop atomic.Bool
	var reads atomic.Int64
	done := make(chan struct{})
	go func() {
		// Bursts of 32 through the forwarding path's lookup.
		keys := make([]Key, 32)
		res := make([]Result, 32)
		for j := range keys {
			keys[j] = Key{Src: 0xc0000263, Iif: 0, Oif: -1}
		}
		n := int64(0)
		for !stop.Load() {
			for j := range keys {
				keys[j].Dst = bench.rnd[(int(n)+j)&(len(bench.rnd)-1)]
			}
			f.LookupBulk(keys, res)
			n += 32
		}
		reads.Store(n)
		close(done)
	}()
	rebuilds, compactions := f.fw.rebuilds, f.fw.compactions
	b.ResetTimer()
	for i := 0; i < b.N; i += per {
		err := f.Batch(func(bt *Batch) error {
			for k := i; k < i+per && k < b.N; k++ {
				// Every replace changes the gateway, also when -count
				// repeats.
				j := (k * 7919) % len(bench.ps)
				p := bench.ps[j]
				bench.gw[j] = (bench.gw[j] + 1) % uint8(len(benchGWs))
				r := Route{Dst: p.Addr, Len: p.Len, Proto: 186, Nexthops: []*Nexthop{{Gateway: benchGWs[bench.gw[j]], Port: -1}}}
				if err := bt.Apply(RouteCmd{Op: OpReplace, Route: r}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stop.Store(true)
	<-done
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/sec, "updates/s")
	b.ReportMetric(float64(reads.Load())/sec/1e6, "Mreads/s")
	b.ReportMetric(float64(f.fw.rebuilds-rebuilds), "rebuilds")
	b.ReportMetric(float64(f.fw.compactions-compactions), "compactions")
}

// BenchmarkMemory900k reports the lookup structure's bytes per prefix
// (nodes and their arrays) and the whole heap's, routes included, after
// the compaction that follows a load.
func BenchmarkMemory900k(b *testing.B) {
	ps := bgptable.Generate(benchSize, 1)
	var f *FIB
	var before, after runtime.MemStats
	for i := 0; i < b.N; i++ {
		f = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		f = buildBGP(b, ps)
		f.Compact() // as the daemon does once large changes are quiet
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	nodes, bytes := trieStats(f.main.root.Load())
	b.ReportMetric(float64(bytes)/float64(len(ps)), "trie-B/prefix")
	b.ReportMetric(float64(bytes)/1e6, "trie-MB")
	b.ReportMetric(float64(nodes), "nodes")
	fs := f.fast.Load()
	b.ReportMetric(float64(fs.bytes())/float64(len(ps)), "lookup-B/prefix")
	b.ReportMetric(float64(fs.bytes())/1e6, "lookup-MB")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(ps)), "heap-B/prefix")
	runtime.KeepAlive(f)
}

// TestBGPTable checks a generated table against the reference on a sample.
func TestBGPTable(t *testing.T) {
	n := 50000
	if raceEnabled {
		n = 5000
	}
	ps := bgptable.Generate(n, 7)
	f := buildBGP(t, ps)
	rf := newRef()
	for _, p := range ps {
		rf.m[p.Len][p.Addr] = 0
	}
	root := f.main.root.Load()
	for _, a := range bgptable.Addrs(ps, 20000, 3) {
		want, _, _ := rf.lpm(a)
		l := root.lpm(a)
		if l == nil || l.key() != want.Addr || l.plen() != want.Len {
			t.Fatalf("lpm %s: %v, want %v", netaddr.IPv4String(a), l, want)
		}
	}
	_ = cache.GenID{}
}

// BenchmarkWalkNodes compares the walk in assembly with the compiled one
// (the same where there is no assembly), over 2,048 addresses again and
// again (hot: the lines they read stay cached, so the cost is the walk's
// own instructions) and over the random stream.
func BenchmarkWalkNodes(b *testing.B) {
	benchSetup(b)
	for _, c := range []struct {
		name     string
		compiled bool
	}{{"assembly", false}, {"compiled", true}} {
		for _, a := range []struct {
			name  string
			addrs []uint32
		}{{"hot", bench.rnd[:2048]}, {"900kRandom", bench.rnd}} {
			b.Run(c.name+"/"+a.name, func(b *testing.B) { benchWalk(b, c.compiled, a.addrs) })
		}
	}
}

func benchWalk(b *testing.B, compiled bool, addrs []uint32) {
	fs := bench.f.fast.Load()
	var vals [bulkN]uint16
	var ent [bulkN]uint32
	var at [bulkN]unsafe.Pointer
	var kid [bulkN]uint8
	b.ResetTimer()
	for i := 0; i < b.N; i += bulkN {
		w := walk{top: &fs.top, chunks: unsafe.Pointer(unsafe.SliceData(fs.chunks)),
			nodes: unsafe.Pointer(unsafe.SliceData(fs.nodes)), dsts: &addrs[i&(len(addrs)-1)], out: &vals[0],
			n: bulkN, ent: &ent, at: &at, kid: &kid}
		var n int
		if compiled {
			n = walkNodesGo(&w)
		} else {
			n = walkNodes(&w)
		}
		if n > 0 {
			fs.walkKids(&w, n)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mlookups/s")
}
