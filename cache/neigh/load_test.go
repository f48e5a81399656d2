package neigh

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/netaddr"
)

// stepFull pushes through fn, stepping the owner whenever the ring fills.
func pushAll(h *harness, n int, fn func(i int) bool, check func()) {
	for i := 0; i < n; {
		if fn(i) {
			i++
			continue
		}
		h.at(h.off)
		check()
	}
	h.at(h.off)
	check()
}

func TestFloodStaysBounded(t *testing.T) {
	h := newHarness(t, 1)
	th3 := DefaultParams().GCThresh3
	r := rand.New(rand.NewPCG(1, 2))
	check := func() {
		if n := h.m.Table(0).Len(); n > th3 {
			t.Fatalf("table holds %d > gc_thresh3 %d", n, th3)
		}
	}
	// 100k ARP requests for us from random on-link sources.
	pushAll(h, 100000, func(int) bool {
		return h.m.ARPReceived(0, 0, 1, 0x0a000000|r.Uint32()&0xffffff, peerMAC, ourIP)
	}, check)
	// 100k resolutions of random on-link destinations, time moving on.
	pushAll(h, 100000, func(i int) bool {
		if i%10000 == 0 {
			h.at(h.off + 500*time.Millisecond)
		}
		return h.m.Resolve(0, 0, 0x0b000000|r.Uint32()&0xffffff)
	}, check)
	st := h.m.Stats()
	if st.TableFulls == 0 || st.ForcedGCRuns == 0 {
		t.Fatalf("flood did not hit the limit: %+v", st)
	}
	// Let the flood's INCOMPLETE entries fail and age; a legit neighbour
	// then resolves.
	h.run(h.off+100*time.Millisecond, h.off+6*time.Second)
	h.resolve(peerIP)
	h.at(h.off)
	if s := h.state(peerIP); s != Incomplete {
		t.Fatalf("legit entry %v after flood", s)
	}
	h.reply(peerIP, peerMAC)
	h.at(h.off)
	if s := h.state(peerIP); s != Reachable {
		t.Fatalf("legit entry %v after reply", s)
	}
	check()
	t.Logf("stats after flood: %+v", h.m.Stats())
}

func TestConcurrentCoresAndOwner(t *testing.T) {
	const cores = 3
	ports := []PortConfig{ethPort("port0", DefaultParams()), {Name: "tun0", PointToPoint: true}}
	clk := &fakeClock{t: t0}
	tx := &fakeTx{}
	m := NewManager(ports, cores, clk, tx, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stop atomic.Bool
	// The owner: Run on the real ticker while the fake clock races ahead.
	wg.Add(2)
	go func() { defer wg.Done(); m.Run(ctx) }()
	go func() {
		defer wg.Done()
		for d := time.Duration(0); !stop.Load(); d += 50 * time.Millisecond {
			clk.set(t0.Add(d))
			m.Step(t0.Add(d))
			time.Sleep(time.Millisecond)
		}
	}()
	var cw sync.WaitGroup
	for c := 0; c < cores; c++ {
		cw.Add(1)
		go func(c int) {
			defer cw.Done()
			r := rand.New(rand.NewPCG(uint64(c), 9))
			end := time.Now().Add(300 * time.Millisecond)
			for i := 0; i < 30000 || time.Now().Before(end); i++ {
				ip := 0xc0000200 | r.Uint32()&0x3f
				switch i % 4 {
				case 0:
					m.Resolve(c, 0, ip)
				case 1:
					m.ARPReceived(c, 0, uint16(1+i%2), ip, netaddr.MAC{2, 0, 0, 0, byte(c), byte(ip)}, ourIP)
				case 2:
					if e := m.Table(0).Lookup(ip); e != nil {
						s, mac, ok := e.Load()
						if ok && (!s.Valid() || mac[0] != 2) {
							t.Errorf("torn entry: %v %v", s, mac)
							return
						}
						_ = e.Seq()
						m.Touch(c, e)
					}
				case 3:
					if e := m.Lookup(c, 1, ip); e == nil || e.State() != NoARP {
						t.Error("p2p lookup")
						return
					}
				}
			}
		}(c)
	}
	// Admin traffic at the same time.
	for i := 0; i < 200; i++ {
		_ = m.Apply(Request{Cmd: CmdReplace, Port: 0, IP: 0xc0000240 + uint32(i%8), MAC: peerMAC, HasMAC: true, State: Reachable})
		_ = m.Entries(-1)
		_ = m.Stats()
		if i%50 == 0 {
			_, _ = m.Flush(Request{Cmd: CmdFlush, Port: 0})
		}
	}
	cw.Wait()
	stop.Store(true)
	cancel()
	wg.Wait()
	st := m.Stats()
	if st.Lookups == 0 || st.Entries == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFastPathZeroAlloc(t *testing.T) {
	h := newHarness(t, 1)
	learnReachable(h)
	h.request(otherIP, newMAC, ourIP) // a STALE one to kick
	h.at(0)
	tb := h.m.Table(0)
	e := tb.Lookup(peerIP)
	stale := tb.Lookup(otherIP)
	cases := map[string]func(){
		"Table.Lookup":   func() { _ = tb.Lookup(peerIP); _ = tb.Lookup(0x0a0a0a0a) },
		"Manager.Lookup": func() { _ = h.m.Lookup(0, 0, peerIP) },
		"Entry reads":    func() { _, _ = e.MAC(); _ = e.State(); _ = e.Seq(); _, _, _ = e.Load() },
		"Resolve hit":    func() { h.m.Resolve(0, 0, peerIP) },
		"Resolve miss":   func() { h.m.Resolve(0, 0, 0x0a0a0a0a) },
		"Touch":          func() { h.m.Touch(0, e) },
		"Touch stale":    func() { h.m.Touch(0, stale) },
		"ARPReceived":    func() { h.m.ARPReceived(0, 0, 2, peerIP, peerMAC, ourIP) },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocs per run", name, n)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	m := NewManager([]PortConfig{ethPort("port0", DefaultParams())}, 1, &fakeClock{t: t0}, nil, nil)
	for i := uint32(0); i < 1000; i++ {
		_ = m.Apply(Request{Cmd: CmdAdd, Port: 0, IP: 0x0a000000 + i, MAC: peerMAC, HasMAC: true, State: Reachable})
	}
	tb := m.Table(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if tb.Lookup(0x0a000000+uint32(i%1000)) == nil {
			b.Fatal("miss")
		}
	}
}

func BenchmarkResolveHit(b *testing.B) {
	m := NewManager([]PortConfig{ethPort("port0", DefaultParams())}, 1, &fakeClock{t: t0}, nil, nil)
	_ = m.Apply(Request{Cmd: CmdAdd, Port: 0, IP: peerIP, MAC: peerMAC, HasMAC: true, State: Reachable})
	for i := 0; i < b.N; i++ {
		m.Resolve(0, 0, peerIP)
	}
}
