package pipeline

import (
	"fmt"
	"math/rand"
	"testing"

	"ferry/fib"
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

// Uniform random destinations over a 900k-prefix BGP-like table.
func BenchmarkReceiveRandom900k(b *testing.B) {
	h := newHarness(b)
	if err := h.nm.Apply(neighPermanent(1, ipB, macB)); err != nil {
		b.Fatal(err)
	}
	h.step(0)
	ps := fib.GenerateBGP(900000, 1)
	err := h.f.Batch(func(bt *fib.Batch) error {
		for _, p := range ps {
			rt, err := fib.ParseRoute([]string{p.String(), "via", "198.51.100.2"}, h.f)
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
	// A million destinations: as many as traffic over the whole table
	// reaches, where a few thousand would keep the walk in the cache.
	dsts := fib.AddrStream(ps, 1<<20, 3)
	benchStream(b, h, [][]byte{echoRequest(macR0, macA, ipA, dsts[0], 64, 1)}, dsts)
}
