package pipeline

import (
	"fmt"
	"math/bits"
	"math/rand"
	"runtime"
	"testing"
	"unsafe"

	"ferry/fib"
	"ferry/internal/bgptable"
	"ferry/netaddr"
)

// benchBurst loads frames into the rx burst each iteration and runs the
// pipeline, reporting the cost per packet.
func benchBurst(b *testing.B, h *harness, frames [][]byte) { benchStream(b, h, frames, nil) }

// benchStream is benchBurst with, when dsts is not nil, each frame's
// destination taken from dsts in turn (its header checksum fixed), so
// that the lookups walk as much of the FIB as the addresses reach.
func benchStream(b *testing.B, h *harness, frames [][]byte, dsts []uint32) {
	bufs := make([]*testBuf, BurstSize)
	for i := range bufs {
		bufs[i] = h.newBuf()
	}
	n := 0
	load := func() {
		for i, buf := range bufs {
			h.rx(i, buf, frames[n%len(frames)], 0)
			if dsts != nil {
				ip := buf.data[EthHdrLen:]
				be.PutUint32(ip[ipDst:], dsts[n%len(dsts)])
				ip[ipCsum], ip[ipCsum+1] = 0, 0
				be.PutUint16(ip[ipCsum:], checksum(ip[:IPv4MinHdr], 0))
			}
			n++
		}
		h.rxN = BurstSize
	}
	reset := func() {
		for p := range h.io.TxN {
			h.io.TxN[p] = 0
		}
		h.freeN = 0
	}
	load()
	h.p.Process()
	reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		load()
		h.p.Process()
		reset()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*BurstSize), "ns/pkt")
	b.ReportMetric(float64(h.counter(HintHits))/float64(h.counter(RxPackets)), "hint-ratio")
}

// benchHarness is a harness with routes /24s in 10/8 via 198.51.100.2; it
// returns their addresses.
func benchHarness(b *testing.B, routes int) (*harness, []uint32) {
	h := newHarness(b)
	if err := h.nm.Apply(neighPermanent(1, ipB, macB)); err != nil {
		b.Fatal(err)
	}
	h.step(0)
	r := rand.New(rand.NewSource(1))
	var nets []uint32
	err := h.f.Batch(func(bt *fib.Batch) error {
		for i := 0; i < routes; i++ {
			a := r.Uint32()&0x00ffff00 | 10<<24
			nets = append(nets, a)
			rt, err := fib.ParseRoute([]string{fmt.Sprintf("%d.%d.%d.0/24", a>>24, a>>16&255, a>>8&255), "via", "198.51.100.2"}, h.f)
			if err != nil {
				return err
			}
			if err := bt.Add(rt); err != nil && err.Error() != "file exists" {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return h, nets
}

// Every packet of the burst has the same destination: one FIB lookup a
// burst, the rest reuse the previous packet's decision (route hints).
func BenchmarkReceiveSameDestination(b *testing.B) {
	h, _ := benchHarness(b, 10000)
	benchBurst(b, h, [][]byte{echoRequest(macR0, macA, ipA, ip4(203, 0, 113, 9), 64, 1)})
}

// Random destinations over the routes: a FIB lookup per packet, decisions
// from the nexthop cache.
func BenchmarkReceiveRandomDestinations(b *testing.B) {
	for _, n := range []int{16, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			h, nets := benchHarness(b, n)
			r := rand.New(rand.NewSource(2))
			frames := make([][]byte, 4096)
			for i := range frames {
				frames[i] = echoRequest(macR0, macA, ipA, nets[r.Intn(len(nets))]|r.Uint32()&0xff, 64, 1)
			}
			benchBurst(b, h, frames)
		})
	}
}

// Uniform random destinations over a 900k-prefix BGP-like table, bursts
// of BurstSize with whole frames copied in (the pass benchmarks below
// hand in passes as the data plane does).
func BenchmarkReceiveRandom900k(b *testing.B) {
	// A million destinations: as many as traffic over the whole table
	// reaches, where a few thousand would keep the walk in the cache.
	h, dsts := bgpHarness(b)
	benchStream(b, h, [][]byte{echoRequest(macR0, macA, ipA, dsts[0], 64, 1)}, dsts)
}

// passBench is a pass of the data plane as the rx shim hands it over: n
// 64-byte frames in buffers spaced as mbufs are, each pass given new
// destinations from a stream and its headers restored where the previous
// pass rewrote them (Ethernet destination, TTL, checksum), with little
// work a frame.
type passBench struct {
	h     *harness
	slab  []byte
	dsts  []uint32
	next  int
	sum0  uint32 // the template header's checksum sum without the destination
	first [8]byte
	n     int
}

const mbufStride = 2304 // a 2 KB data room and the mbuf header, as the pool lays them out

func newPassBench(h *harness, dsts []uint32, n int) *passBench {
	b := &passBench{h: h, dsts: dsts, n: n, slab: make([]byte, n*mbufStride)}
	tmpl := ipPacket(macR0, macA, ipA, 0, 64, ProtoUDP, make([]byte, 26))
	ip := tmpl[EthHdrLen:]
	ip[ipCsum], ip[ipCsum+1] = 0, 0
	for i := 0; i < IPv4MinHdr; i += 2 {
		b.sum0 += uint32(be.Uint16(ip[i:]))
	}
	copy(b.first[:], tmpl)
	io := &h.io
	for i := 0; i < n; i++ {
		f := b.slab[i*mbufStride+128:]
		copy(f, tmpl)
		io.Rx[i] = RxPkt{Ref: unsafe.Pointer(&b.slab[i*mbufStride]), Data: unsafe.Pointer(&f[0]), Len: uint16(len(tmpl)), Cap: 2048}
	}
	return b
}

// load stamps the next destinations into the pass's frames.
func (b *passBench) load() {
	for i := 0; i < b.n; i++ {
		f := (*frameHdr)(unsafe.Pointer(&b.slab[i*mbufStride+128]))
		d := b.dsts[b.next]
		b.next++
		if b.next == len(b.dsts) {
			b.next = 0
		}
		*(*[8]byte)(f[:]) = b.first
		ip := f[EthHdrLen:]
		s := b.sum0 + d>>16 + d&0xffff
		s = s&0xffff + s>>16
		s = s&0xffff + s>>16
		le.PutUint32(ip[ipTTL:], uint32(64)|uint32(ProtoUDP)<<8|uint32(bits.ReverseBytes16(^uint16(s)))<<16)
		be.PutUint32(ip[ipDst:], d)
	}
	*b.h.io.RxN = uint32(b.n)
}

func (b *passBench) run(tb *testing.B, process bool) {
	io := &b.h.io
	pass := func() {
		b.load()
		if process {
			b.h.p.Process()
		}
		for p := range io.TxN {
			io.TxN[p] = 0
		}
		*io.FreeN = 0
	}
	pass()
	// The table build's garbage is collected now, not while measured: in
	// steady forwarding no collection runs.
	runtime.GC()
	tb.ResetTimer()
	for i := 0; i < tb.N; i++ {
		pass()
	}
	tb.StopTimer()
	tb.ReportMetric(float64(tb.Elapsed().Nanoseconds())/float64(tb.N*b.n), "ns/pkt")
	if process && b.h.counter(Forwarded) < uint64(tb.N*b.n) {
		tb.Fatalf("forwarded %d of %d", b.h.counter(Forwarded), tb.N*b.n)
	}
}

// bgpHarness is a harness with the 900k-prefix BGP-like table via
// 198.51.100.2, and destinations over it.
func bgpHarness(b *testing.B) (*harness, []uint32) { return bgpHarnessN(b, 900000) }

func bgpHarnessN(b *testing.B, routes int) (*harness, []uint32) { return bgpHarnessGWs(b, routes, 1) }

// bgpHarnessGWs is bgpHarnessN with the routes over gws gateways on port
// 1 in turn, 198.51.100.2 on: a router with several peers.
func bgpHarnessGWs(b *testing.B, routes, gws int) (*harness, []uint32) {
	h := newHarness(b)
	for g := 0; g < gws; g++ {
		mac := macB
		mac[4] = byte(g)
		if err := h.nm.Apply(neighPermanent(1, ipB+uint32(g), mac)); err != nil {
			b.Fatal(err)
		}
	}
	h.step(0)
	ps := bgptable.Generate(routes, 1)
	err := h.f.Batch(func(bt *fib.Batch) error {
		for i, p := range ps {
			rt, err := fib.ParseRoute([]string{p.String(), "via", netaddr.IPv4String(ipB + uint32(i%gws))}, h.f)
			if err != nil {
				return err
			}
			if err := bt.Add(rt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return h, bgptable.Addrs(ps, 1<<20, 3)
}

// The same over a 10k-prefix table: quick to set up, so also the one to
// count instructions on (valgrind --tool=callgrind).
func BenchmarkPass10k(b *testing.B) {
	h, dsts := bgpHarnessN(b, 10000)
	newPassBench(h, dsts, 256).run(b, true)
}

// Passes of 256 frames over the 900k table, uniform destinations: the
// per-packet cost of the whole path as the data plane runs it, with the
// frames' restoring included (PassLoad900k is that part alone).
func BenchmarkPass900k(b *testing.B) {
	h, dsts := bgpHarness(b)
	newPassBench(h, dsts, 256).run(b, true)
}

func BenchmarkPassLoad900k(b *testing.B) {
	h, dsts := bgpHarness(b)
	newPassBench(h, dsts, 256).run(b, false)
}

// Pass900k with the routes over four gateways: the packets of a pass
// alternate between their decisions.
func BenchmarkPass900kGateways4(b *testing.B) {
	h, dsts := bgpHarnessGWs(b, 900000, 4)
	newPassBench(h, dsts, 256).run(b, true)
}

// The same with one destination: route hints.
func BenchmarkPassSingle900k(b *testing.B) {
	h, dsts := bgpHarness(b)
	newPassBench(h, dsts[:1], 256).run(b, true)
}

// Pass900k with policy rules that match none of the traffic (the sources
// they select are elsewhere) over four more tables: the forwarding rate
// operators keep when they add multi-table rules, for uniform destinations
// and for one. rules=0 is Pass900k and PassSingle900k.
func BenchmarkPassRules900k(b *testing.B) {
	for _, n := range []int{0, 1, 16} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			h, dsts := bgpHarness(b)
			for i := 0; i < n; i++ {
				tbl := fmt.Sprint(100 + i%4)
				if i < 4 {
					rt, err := fib.ParseRoute([]string{"10.99.0.0/16", "via", "198.51.100.2", "table", tbl}, h.f)
					if err == nil {
						err = h.f.Add(rt)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				h.addRule(fmt.Sprintf("priority %d from 172.%d.0.0/16 lookup %s", 100+i, 16+i, tbl))
			}
			b.Run("uniform", func(b *testing.B) { newPassBench(h, dsts, 256).run(b, true) })
			// No hints with rules, but one lookup for a run to one
			// destination that no selector can match.
			b.Run("single", func(b *testing.B) { newPassBench(h, dsts[:1], 256).run(b, true) })
		})
	}
}
