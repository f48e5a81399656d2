package conf

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"

	"ferry/pipeline"
)

func (r *Router) stats() (string, any, error) {
	c := r.Dataplane.Counters()
	data := map[string]uint64{}
	var names []string
	for i := 0; i < pipeline.NumCounters; i++ {
		name := pipeline.Counter(i).Name()
		data[name] = c[i]
		names = append(names, name)
	}
	var b strings.Builder
	b.WriteString("packets:\n")
	for i := 0; i < pipeline.NumCounters; i++ {
		ctr := pipeline.Counter(i)
		if !ctr.IsDrop() {
			fmt.Fprintf(&b, "  %-24s %d\n", ctr.Name(), c[i])
		}
	}
	b.WriteString("drops:\n")
	for i := 0; i < pipeline.NumCounters; i++ {
		ctr := pipeline.Counter(i)
		if ctr.IsDrop() {
			fmt.Fprintf(&b, "  %-24s %d\n", ctr.Name(), c[i])
		}
	}
	kp := r.Dataplane.KernelPathStats()
	if kp != nil {
		b.WriteString("kernel path:\n")
		for i, k := range kp {
			fmt.Fprintf(&b, "  %-10s punted %d dropped_queue_full %d dropped_rate %d  injected %d inject_dropped %d\n",
				r.FIB.PortName(i), k.Punted.Frames, k.Punted.Full, k.Punted.Limited, k.Injected.Frames, k.Injected.Full+k.Injected.TooLong)
		}
	}
	ns := r.Neigh.Stats()
	fmt.Fprintf(&b, "neighbours:\n  entries %d allocs %d destroys %d res_failed %d table_fulls %d forced_gc_runs %d\n",
		ns.Entries, ns.Allocs, ns.Destroys, ns.ResFailed, ns.TableFulls, ns.ForcedGCRuns)
	rt := readRuntime()
	fmt.Fprintf(&b, "memory:\n  hugepage_bytes %d\n", rt.HugepageBytes)
	fmt.Fprintf(&b, "runtime:\n  gc_cycles %d heap_bytes %d heap_live_bytes %d heap_unused_bytes %d go_mapped_bytes %d gomaxprocs %d\n", rt.GCCycles, rt.HeapBytes, rt.HeapLive, rt.HeapUnused, rt.GoMapped, rt.GoMaxProcs)
	sort.Strings(names)
	out := map[string]any{"counters": data, "neigh": ns, "runtime": rt}
	if kp != nil {
		byPort := map[string]pipeline.KernelPathStats{}
		for i, k := range kp {
			byPort[r.FIB.PortName(i)] = k
		}
		out["kernel_path"] = byPort
	}
	return b.String(), out, nil
}

// CoreStat is one pipeline's counters, for 'stats -per-core'.
type CoreStat struct {
	Core     int               `json:"core"` // the pipeline's queue index
	Counters map[string]uint64 `json:"counters"`
}

// coreStats shows each pipeline's packets and drops side by side, a
// column a core; a counter every core left at zero is left out.
func (r *Router) coreStats() (string, any, error) {
	per := r.Dataplane.CoreCounters()
	data := make([]CoreStat, len(per))
	for i, c := range per {
		data[i] = CoreStat{Core: i, Counters: map[string]uint64{}}
		for j := 0; j < pipeline.NumCounters; j++ {
			data[i].Counters[pipeline.Counter(j).Name()] = c[j]
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s", "")
	for i := range per {
		fmt.Fprintf(&b, " %14s", fmt.Sprintf("core %d", i))
	}
	b.WriteByte('\n')
	for j := 0; j < pipeline.NumCounters; j++ {
		any := false
		for i := range per {
			any = any || per[i][j] != 0
		}
		if !any && pipeline.Counter(j) != pipeline.RxPackets && pipeline.Counter(j) != pipeline.TxPackets {
			continue
		}
		fmt.Fprintf(&b, "%-24s", pipeline.Counter(j).Name())
		for i := range per {
			fmt.Fprintf(&b, " %14d", per[i][j])
		}
		b.WriteByte('\n')
	}
	return b.String(), data, nil
}

// hugepageBytes is the hugepage memory the process maps, from
// /proc/self/smaps_rollup (hugetlbfs files stay mapped after --huge-unlink).
func hugepageBytes() uint64 {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return 0
	}
	var kb uint64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Shared_Hugetlb:") || strings.HasPrefix(l, "Private_Hugetlb:") {
			if f := strings.Fields(l); len(f) >= 2 {
				v, _ := strconv.ParseUint(f[1], 10, 64)
				kb += v
			}
		}
	}
	return kb << 10
}

// debugGC collects garbage now and returns memory to the system, so that
// the live heap can be read (as after the runtime's forced collection,
// without the two minutes' wait).
func (r *Router) debugGC() (string, any, error) {
	before := readRuntime()
	debug.FreeOSMemory() // a full collection first
	after := readRuntime()
	return fmt.Sprintf("heap_bytes %d -> %d (live %d)\n", before.HeapBytes, after.HeapBytes, after.HeapLive), after, nil
}

// debugHeap writes a heap profile (go tool pprof) to path on ferryd's
// machine, after a full collection.
func (r *Router) debugHeap(path string) (string, any, error) {
	runtime.GC()
	fh, err := os.Create(path)
	if err != nil {
		return "", nil, err
	}
	defer fh.Close()
	if err := pprof.WriteHeapProfile(fh); err != nil {
		return "", nil, err
	}
	return "heap profile written to " + path + "\n", nil, nil
}

// RuntimeStats is what the Go runtime tells of the daemon's memory: the
// forwarding path allocates nothing, so garbage collection cycles that
// grow while only packets flow point at a regression.
type RuntimeStats struct {
	HugepageBytes uint64 `json:"hugepage_bytes"`  // hugepage memory mapped (DPDK's)
	GCCycles      uint64 `json:"gc_cycles"`       // completed since start
	HeapBytes     uint64 `json:"heap_bytes"`      // live objects and unswept garbage
	HeapLive      uint64 `json:"heap_live_bytes"` // live objects as the last collection found them
	// HeapUnused is heap memory in spans that hold live objects but is
	// free: fragmentation, which a collection cannot return to the system.
	HeapUnused uint64 `json:"heap_unused_bytes"`
	// GoMapped is all the memory the Go runtime holds from the system
	// (heap, stacks, its own metadata), less what it returned: its share
	// of the RSS, beside DPDK's.
	GoMapped uint64 `json:"go_mapped_bytes"`
	// GoMaxProcs is the runtime's processors: one per pipeline and the
	// control plane's (ferryd sets it; see cmd/ferryd).
	GoMaxProcs int `json:"gomaxprocs"`
}

func readRuntime() RuntimeStats {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"}, {Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	var rt RuntimeStats
	if s[3].Value.Kind() == metrics.KindUint64 {
		rt.HeapUnused = s[3].Value.Uint64()
	}
	if s[4].Value.Kind() == metrics.KindUint64 && s[5].Value.Kind() == metrics.KindUint64 {
		rt.GoMapped = s[4].Value.Uint64() - s[5].Value.Uint64()
	}
	if s[0].Value.Kind() == metrics.KindUint64 {
		rt.GCCycles = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		rt.HeapBytes = s[1].Value.Uint64()
	}
	if s[2].Value.Kind() == metrics.KindUint64 {
		rt.HeapLive = s[2].Value.Uint64()
	}
	rt.HugepageBytes = hugepageBytes()
	rt.GoMaxProcs = runtime.GOMAXPROCS(0)
	return rt
}

func (r *Router) cacheStats() (string, any, error) {
	c := r.Dataplane.Counters()
	data := map[string]uint64{
		"hint_hits":       c[pipeline.HintHits],
		"fib_lookups":     c[pipeline.FIBLookups],
		"nh_cache_hits":   c[pipeline.NhCacheHits],
		"nh_cache_misses": c[pipeline.NhCacheMisses],
		"decisions_made":  c[pipeline.DecisionsMade],
		"exception_hits":  c[pipeline.ExceptionHits],
		"fib_slow_walks":  r.FIB.SlowWalks(),
		"fib_used_blocks": uint64(r.FIB.UsedBlocks()),
		"exceptions":      uint64(r.countExceptions()),
		"genid_bumps":     r.Gen.Bumps(),
		"genid":           uint64(r.Gen.Current()),
	}
	keys := []string{"hint_hits", "fib_lookups", "fib_slow_walks", "fib_used_blocks", "nh_cache_hits", "nh_cache_misses", "exception_hits", "decisions_made", "exceptions", "genid_bumps", "genid"}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%-16s %d\n", k, data[k])
	}
	return b.String(), data, nil
}
