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
	"ferry/netaddr"
)

// batchLine writes the request ferryctl -batch sends for routes first..end
// of ps (routes i over four gateways on two ports, i%4), with verb, or
// gateway gw for all of them when it is given.
func batchLine(buf []byte, ps []netaddr.Prefix, first, end int, verb, gw string) []byte {
	gws := []string{"192.0.2.2", "192.0.2.3", "198.51.100.2", "198.51.100.3"}
	buf = append(buf[:0], `{"batch":[`...)
	for i := first; i < end; i++ {
		if i > first {
			buf = append(buf, ',')
		}
		g := gw
		if g == "" {
			g = gws[i%len(gws)]
		}
		buf = append(buf, `["route","`...)
		buf = append(buf, verb...)
		buf = append(buf, `","`...)
		buf = append(buf, ps[i].String()...)
		buf = append(buf, `","via","`...)
		buf = append(buf, g...)
		buf = append(buf, `"]`...)
	}
	return append(buf, "]}\n"...)
}

// benchChunk is ferryctl's batch chunk: the commands of one request.
const benchChunk = 2048

// loadTable sends ps to r as ferryctl -batch does, request by request,
// each decoded as ferryd decodes it, and returns the time the requests
// took (their encoding is the client's, and not counted). Only the
// prefixes stay in memory between requests, as in ferryd only the table.
func loadTable(b testing.TB, r *Router, ps []netaddr.Prefix, step int, verb, gw string) time.Duration {
	chunk := benchChunk
	if s := os.Getenv("FERRY_BENCH_CHUNK"); s != "" {
		chunk, _ = strconv.Atoi(s)
	}
	var took time.Duration
	var line []byte
	var sel []netaddr.Prefix
	for i := 0; i < len(ps); i += step {
		sel = append(sel, ps[i])
	}
	for i := 0; i < len(sel); i += chunk {
		end := min(i+chunk, len(sel))
		line = batchLine(line, sel, i, end, verb, gw)
		t0 := time.Now()
		var req Request
		if err := decodeRequest(line, &req); err != nil {
			b.Fatal(err)
		}
		if _, at, err := r.ExecBatch(req.Batch); err != nil {
			b.Fatalf("line %d: %v", i+at, err)
		}
		took += time.Since(t0)
	}
	return took
}

// BenchmarkBatchLoad900k loads a 900k-route table as ferryctl -batch does
// (in requests of 2,048 commands), then replaces 10% of it, and reports
// the times (until the lookup structure is built in full) and the heap
// the routes hold.
func BenchmarkBatchLoad900k(b *testing.B) {
	n := 900000
	if s := os.Getenv("FERRY_BENCH_ROUTES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ps := bgptable.Generate(n, 1)
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
		load += loadTable(b, r, ps, 1, "add", "")
		t0 := time.Now()
		r.FIB.BuildDeferred() // the structure fully built: forwarding at speed
		load += time.Since(t0)
		replace += loadTable(b, r, ps, 10, "replace", "192.0.2.77")
		t0 = time.Now()
		r.FIB.BuildDeferred()
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
