package fib
import "testing"
func BenchmarkTmpUpdatesAlone(b *testing.B) {
	benchSetup(b)
	f := bench.f
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := (i * 7919) % len(bench.ps)
		p := bench.ps[j]
		bench.gw[j] = (bench.gw[j] + 1) % uint8(len(benchGWs))
		r := Route{Dst: p.Addr, Len: p.Len, Proto: 186, Nexthops: []*Nexthop{{Gateway: benchGWs[bench.gw[j]], Port: -1}}}
		if err := f.Replace(r); err != nil { b.Fatal(err) }
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}
