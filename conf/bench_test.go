package conf

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"ferry/fib"
	"ferry/internal/bgptable"
)

// fullTable is a BGP-like table of n routes as ferryctl -batch sends it:
// one command a line, split into words, over eight gateways on two ports.
func fullTable(n int) [][]string {
	gws := []string{"192.0.2.2", "192.0.2.3", "198.51.100.2", "198.51.100.3"}
	cmds := make([][]string, n)
	for i, p := range bgptable.Generate(n, 1) {
		cmds[i] = []string{"route", "add", p.String(), "via", gws[i%len(gws)]}
	}
	return cmds
}

// benchChunk is ferryctl's batch chunk: the commands of one request.
const benchChunk = 2048

func loadTable(b testing.TB, r *Router, cmds [][]string) {
	chunk := benchChunk
	if s := os.Getenv("FERRY_BENCH_CHUNK"); s != "" {
		chunk, _ = strconv.Atoi(s)
	}
	for i := 0; i < len(cmds); i += chunk {
		if _, at, err := r.ExecBatch(cmds[i:min(i+chunk, len(cmds))]); err != nil {
			b.Fatalf("line %d: %v", i+at, err)
		}
	}
}

// BenchmarkBatchLoad900k loads a 900k-route table as ferryctl -batch does
// (in requests of 2,048 commands), then replaces 10% of it, and reports
// the times and the heap the routes hold.
func BenchmarkBatchLoad900k(b *testing.B) {
	n := 900000
	if s := os.Getenv("FERRY_BENCH_ROUTES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	cmds := fullTable(n)
	repl := make([][]string, 0, n/10)
	for i := 0; i < n; i += 10 {
		repl = append(repl, []string{"route", "replace", cmds[i][2], "via", "192.0.2.77"})
	}
	if os.Getenv("GOGC") == "" {
		// As ferryd runs; GOGC=100 in the environment measures Go's default.
		defer debug.SetGCPercent(debug.SetGCPercent(fib.DefaultGCPercent))
	}
	var load, replace time.Duration
	var builds fib.BuildStats
	var before, after runtime.MemStats
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := testRouter(b)
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		t0 := time.Now()
		loadTable(b, r, cmds)
		load += time.Since(t0)
		t0 = time.Now()
		loadTable(b, r, repl)
		replace += time.Since(t0)
		b.StopTimer()
		st := r.FIB.BuildStats()
		builds.Compactions += st.Compactions
		r.trimHeap() // as the daemon does once the changes are quiet
		runtime.ReadMemStats(&after)
		if got := len(r.FIB.Routes(fib.TableMain)); got < n {
			b.Fatalf("%d routes in main", got)
		}
		runtime.KeepAlive(r)
	}
	b.ReportMetric(float64(builds.Compactions)/float64(b.N), "compactions")
	b.ReportMetric(load.Seconds()/float64(b.N), "load-s")
	b.ReportMetric(replace.Seconds()/float64(b.N), "replace10%-s")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "heap-B/route")
	// Free room in spans that hold live objects: what a collection cannot
	// return, and so the RSS above the live heap.
	b.ReportMetric(float64(after.HeapInuse-after.HeapAlloc)/1e6, "frag-MB")
}
