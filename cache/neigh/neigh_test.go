package neigh

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"ferry/netaddr"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type solicit struct {
	port   int
	target uint32
	dst    *netaddr.MAC
}

type fakeTx struct {
	mu  sync.Mutex
	got []solicit
}

func (f *fakeTx) Solicit(port int, target uint32, dst *netaddr.MAC) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d *netaddr.MAC
	if dst != nil {
		c := *dst
		d = &c
	}
	f.got = append(f.got, solicit{port, target, d})
	return nil
}

func (f *fakeTx) list() []solicit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]solicit(nil), f.got...)
}

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type harness struct {
	t   *testing.T
	m   *Manager
	clk *fakeClock
	tx  *fakeTx
	off time.Duration
}

const (
	ourIP   = 0xc0000201 // 192.0.2.1
	peerIP  = 0xc0000202 // 192.0.2.2
	otherIP = 0xc0000203 // 192.0.2.3
)

var (
	ourMAC  = netaddr.MAC{0x02, 0, 0, 0, 0, 0x01}
	peerMAC = netaddr.MAC{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	newMAC  = netaddr.MAC{0x02, 0x66, 0x77, 0x88, 0x99, 0xaa}
)

func ethPort(name string, p Params) PortConfig {
	return PortConfig{Name: name, MAC: ourMAC, Addrs: []uint32{ourIP}, Params: p}
}

func newHarness(t *testing.T, cores int, ports ...PortConfig) *harness {
	t.Helper()
	if len(ports) == 0 {
		ports = []PortConfig{ethPort("port0", DefaultParams())}
	}
	clk := &fakeClock{t: t0}
	tx := &fakeTx{}
	m := NewManager(ports, cores, clk, tx, func(string, ...any) {})
	// reachable_time == base_reachable_time, so timings are exact.
	m.rnd = func() float64 { return 0.5 }
	for _, p := range m.ports {
		p.reachable = m.randReach(p.p.BaseReachableTime)
	}
	return &harness{t: t, m: m, clk: clk, tx: tx}
}

// run steps the owner every 100 ms from 'from' through 'to', as Run would.
func (h *harness) run(from, to time.Duration) {
	for d := from; d <= to; d += 100 * time.Millisecond {
		h.at(d)
	}
}

// at moves the fake clock to start+d and steps the owner.
func (h *harness) at(d time.Duration) {
	h.off = d
	h.clk.set(t0.Add(d))
	h.m.Step(t0.Add(d))
}

func (h *harness) state(ip uint32) State {
	e := h.m.Table(0).Lookup(ip)
	if e == nil {
		return None
	}
	return e.State()
}

func (h *harness) reply(ip uint32, mac netaddr.MAC) {
	if !h.m.ARPReceived(0, 0, 2, ip, mac, ourIP) {
		h.t.Fatal("ring full")
	}
}

func (h *harness) request(sip uint32, mac netaddr.MAC, tip uint32) {
	if !h.m.ARPReceived(0, 0, 1, sip, mac, tip) {
		h.t.Fatal("ring full")
	}
}

func (h *harness) resolve(ip uint32) {
	if !h.m.Resolve(0, 0, ip) {
		h.t.Fatal("ring full")
	}
}

func (h *harness) touch(ip uint32) {
	e := h.m.Table(0).Lookup(ip)
	if e == nil {
		h.t.Fatalf("touch %s: no entry", netaddr.IPv4String(ip))
	}
	h.m.Touch(0, e)
}

// step of a scripted scenario: at offset At, run Do, step the owner, then
// check the peer's state, its MAC and the solicitations sent so far.
type step struct {
	At       time.Duration
	Do       func(h *harness)
	Want     State
	MAC      *netaddr.MAC // nil: not checked
	Solicits int          // cumulative; -1: not checked
	Unicast  int          // cumulative unicast solicitations; -1: not checked
}

func sec(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }

// learnReachable makes peerIP REACHABLE with peerMAC at the current time.
func learnReachable(h *harness) {
	h.resolve(peerIP)
	h.m.Step(h.clk.Now())
	h.reply(peerIP, peerMAC)
}

func TestTransitions(t *testing.T) {
	pm, nm := peerMAC, newMAC
	accept := DefaultParams()
	accept.ArpAccept = true
	cases := []struct {
		name   string
		params *Params
		steps  []step
	}{
		{"incomplete to reachable on reply", nil, []step{
			{At: 0, Do: func(h *harness) { h.resolve(peerIP) }, Want: Incomplete, Solicits: 1, Unicast: 0},
			{At: sec(0.5), Do: func(h *harness) { h.reply(peerIP, peerMAC) }, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: 0},
			{At: sec(5), Want: Reachable, Solicits: 1, Unicast: 0},
		}},
		{"incomplete to failed after mcast_solicit broadcasts retrans apart", nil, []step{
			{At: 0, Do: func(h *harness) { h.resolve(peerIP) }, Want: Incomplete, Solicits: 1, Unicast: 0},
			{At: sec(0.999), Want: Incomplete, Solicits: 1, Unicast: -1},
			{At: sec(1), Want: Incomplete, Solicits: 2, Unicast: -1},
			{At: sec(2), Want: Incomplete, Solicits: 3, Unicast: -1},
			{At: sec(3), Want: Failed, Solicits: 3, Unicast: 0},
			{At: sec(10), Want: Failed, Solicits: 3, Unicast: 0},
		}},
		{"failed entry in use goes back to incomplete", nil, []step{
			{At: 0, Do: func(h *harness) { h.resolve(peerIP) }, Want: Incomplete, Solicits: 1, Unicast: -1},
			{At: sec(1), Want: Incomplete, Solicits: 2, Unicast: -1},
			{At: sec(2), Want: Incomplete, Solicits: 3, Unicast: -1},
			{At: sec(3), Want: Failed, Solicits: 3, Unicast: -1},
			{At: sec(4), Do: func(h *harness) { h.resolve(peerIP) }, Want: Incomplete, Solicits: 4, Unicast: 0},
			{At: sec(4.5), Do: func(h *harness) { h.reply(peerIP, peerMAC) }, Want: Reachable, MAC: &pm, Solicits: 4, Unicast: -1},
		}},
		{"reachable to stale after reachable_time", nil, []step{
			{At: 0, Do: learnReachable, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: -1},
			{At: sec(29.9), Want: Reachable, Solicits: 1, Unicast: -1},
			{At: sec(30), Want: Stale, MAC: &pm, Solicits: 1, Unicast: -1},
		}},
		{"reachable used recently goes straight to delay then reachable", nil, []step{
			{At: 0, Do: learnReachable, Want: Reachable, Solicits: 1, Unicast: -1},
			{At: sec(28), Do: func(h *harness) { h.touch(peerIP) }, Want: Reachable, Solicits: 1, Unicast: -1},
			{At: sec(30), Want: Delay, Solicits: 1, Unicast: -1},
			{At: sec(31), Do: func(h *harness) { h.reply(peerIP, peerMAC) }, Want: Reachable, Solicits: 1, Unicast: 0},
		}},
		{"stale used goes to delay, confirmed goes reachable", nil, []step{
			{At: 0, Do: learnReachable, Want: Reachable, Solicits: 1, Unicast: -1},
			{At: sec(30), Want: Stale, Solicits: 1, Unicast: -1},
			{At: sec(40), Do: func(h *harness) { h.touch(peerIP) }, Want: Delay, MAC: &pm, Solicits: 1, Unicast: -1},
			{At: sec(42), Do: func(h *harness) { h.reply(peerIP, peerMAC) }, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: 0},
			{At: sec(50), Want: Reachable, Solicits: 1, Unicast: 0},
		}},
		{"stale resolve kicks delay too", nil, []step{
			{At: 0, Do: func(h *harness) { h.request(peerIP, peerMAC, ourIP) }, Want: Stale, MAC: &pm, Solicits: 0, Unicast: 0},
			{At: sec(1), Do: func(h *harness) { h.resolve(peerIP) }, Want: Delay, Solicits: 0, Unicast: 0},
		}},
		{"delay to probe, unicast probes, then failed", nil, []step{
			{At: 0, Do: func(h *harness) { h.request(peerIP, peerMAC, ourIP) }, Want: Stale, Solicits: 0, Unicast: 0},
			{At: sec(10), Do: func(h *harness) { h.touch(peerIP) }, Want: Delay, Solicits: 0, Unicast: 0},
			{At: sec(14.9), Want: Delay, Solicits: 0, Unicast: 0},
			{At: sec(15), Want: Probe, MAC: &pm, Solicits: 1, Unicast: 1},
			{At: sec(16), Want: Probe, Solicits: 2, Unicast: 2},
			{At: sec(17), Want: Probe, Solicits: 3, Unicast: 3},
			{At: sec(18), Want: Failed, Solicits: 3, Unicast: 3},
		}},
		{"probe answered goes reachable", nil, []step{
			{At: 0, Do: func(h *harness) { h.request(peerIP, peerMAC, ourIP) }, Want: Stale, Solicits: 0, Unicast: 0},
			{At: sec(10), Do: func(h *harness) { h.touch(peerIP) }, Want: Delay, Solicits: 0, Unicast: 0},
			{At: sec(15), Want: Probe, Solicits: 1, Unicast: 1},
			{At: sec(15.2), Do: func(h *harness) { h.reply(peerIP, peerMAC) }, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: 1},
		}},
		{"request for us creates stale (neigh_event_ns)", nil, []step{
			{At: 0, Do: func(h *harness) { h.request(peerIP, peerMAC, ourIP) }, Want: Stale, MAC: &pm, Solicits: 0, Unicast: 0},
		}},
		{"request not for us creates nothing", nil, []step{
			{At: 0, Do: func(h *harness) { h.request(peerIP, peerMAC, otherIP) }, Want: None, Solicits: 0, Unicast: 0},
		}},
		{"request for us with same mac keeps reachable", nil, []step{
			{At: 0, Do: learnReachable, Want: Reachable, Solicits: 1, Unicast: -1},
			{At: sec(5), Do: func(h *harness) { h.request(peerIP, peerMAC, ourIP) }, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: -1},
		}},
		{"mac change on reachable moves to stale with new mac", nil, []step{
			{At: 0, Do: learnReachable, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: -1},
			{At: sec(5), Do: func(h *harness) { h.request(peerIP, newMAC, ourIP) }, Want: Stale, MAC: &nm, Solicits: 1, Unicast: -1},
		}},
		{"request not for us with new mac after locktime: stale", nil, []step{
			{At: 0, Do: learnReachable, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: -1},
			{At: sec(5), Do: func(h *harness) { h.request(peerIP, newMAC, otherIP) }, Want: Stale, MAC: &nm, Solicits: 1, Unicast: -1},
		}},
		{"second reply within locktime is ignored", nil, []step{
			{At: 0, Do: func(h *harness) { h.resolve(peerIP) }, Want: Incomplete, Solicits: 1, Unicast: -1},
			{At: sec(0.1), Do: func(h *harness) { h.reply(peerIP, peerMAC) }, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: -1},
			{At: sec(0.2), Do: func(h *harness) { h.reply(peerIP, newMAC) }, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: -1},
			{At: sec(2), Do: func(h *harness) { h.reply(peerIP, newMAC) }, Want: Reachable, MAC: &nm, Solicits: 1, Unicast: -1},
		}},
		{"gratuitous arp updates known entry even within locktime", nil, []step{
			{At: 0, Do: learnReachable, Want: Reachable, MAC: &pm, Solicits: 1, Unicast: -1},
			{At: sec(0.1), Do: func(h *harness) { h.request(peerIP, newMAC, peerIP) }, Want: Stale, MAC: &nm, Solicits: 1, Unicast: -1},
		}},
		{"gratuitous arp from unknown host ignored without arp_accept", nil, []step{
			{At: 0, Do: func(h *harness) { h.request(peerIP, peerMAC, peerIP) }, Want: None, Solicits: 0, Unicast: 0},
		}},
		{"gratuitous arp from unknown host creates stale with arp_accept", &accept, []step{
			{At: 0, Do: func(h *harness) { h.request(peerIP, peerMAC, peerIP) }, Want: Stale, MAC: &pm, Solicits: 0, Unicast: 0},
		}},
		{"unsolicited reply ignored without arp_accept", nil, []step{
			{At: 0, Do: func(h *harness) { h.reply(peerIP, peerMAC) }, Want: None, Solicits: 0, Unicast: 0},
		}},
		{"unsolicited reply accepted with arp_accept", &accept, []step{
			{At: 0, Do: func(h *harness) { h.reply(peerIP, peerMAC) }, Want: Reachable, MAC: &pm, Solicits: 0, Unicast: 0},
		}},
		{"broadcast reply only makes stale", nil, []step{
			{At: 0, Do: func(h *harness) { h.resolve(peerIP) }, Want: Incomplete, Solicits: 1, Unicast: -1},
			{At: sec(0.5), Do: func(h *harness) {
				h.m.ARPInput(0, 0, ARPPacket{Op: 2, SenderIP: peerIP, SenderMAC: peerMAC, TargetIP: ourIP})
			}, Want: Stale, MAC: &pm, Solicits: 1, Unicast: -1},
		}},
		{"permanent untouched by learning and timers", nil, []step{
			{At: 0, Do: func(h *harness) {
				if err := h.m.Apply(Request{Cmd: CmdAdd, Port: 0, IP: peerIP, MAC: peerMAC, HasMAC: true, State: Permanent}); err != nil {
					h.t.Fatal(err)
				}
			}, Want: Permanent, MAC: &pm, Solicits: 0, Unicast: 0},
			{At: sec(2), Do: func(h *harness) {
				h.reply(peerIP, newMAC)
				h.request(peerIP, newMAC, ourIP)
				h.request(peerIP, newMAC, peerIP)
				h.resolve(peerIP)
			}, Want: Permanent, MAC: &pm, Solicits: 0, Unicast: 0},
			{At: sec(500), Want: Permanent, MAC: &pm, Solicits: 0, Unicast: 0},
		}},
		{"noarp entry untouched by learning", nil, []step{
			{At: 0, Do: func(h *harness) {
				if err := h.m.Apply(Request{Cmd: CmdAdd, Port: 0, IP: peerIP, MAC: peerMAC, HasMAC: true, State: NoARP}); err != nil {
					h.t.Fatal(err)
				}
			}, Want: NoARP, MAC: &pm, Solicits: 0, Unicast: 0},
			{At: sec(2), Do: func(h *harness) { h.request(peerIP, newMAC, ourIP); h.resolve(peerIP) }, Want: NoARP, MAC: &pm, Solicits: 0, Unicast: 0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			if tc.params != nil {
				p = *tc.params
			}
			h := newHarness(t, 1, ethPort("port0", p))
			for i, s := range tc.steps {
				// Step before and after Do so cores' used stamps see s.At.
				h.at(s.At)
				if s.Do != nil {
					s.Do(h)
				}
				h.at(s.At)
				if got := h.state(peerIP); got != s.Want {
					t.Fatalf("step %d (t=%v): state %v, want %v", i, s.At, got, s.Want)
				}
				if s.MAC != nil {
					got, ok := h.m.Table(0).Lookup(peerIP).MAC()
					if !ok || got != *s.MAC {
						t.Fatalf("step %d: mac %v ok=%v, want %v", i, got, ok, *s.MAC)
					}
				}
				sent := h.tx.list()
				if s.Solicits >= 0 && len(sent) != s.Solicits {
					t.Fatalf("step %d (t=%v): %d solicitations, want %d", i, s.At, len(sent), s.Solicits)
				}
				uni := 0
				for _, x := range sent {
					if x.target != peerIP || x.port != 0 {
						t.Fatalf("solicited %s on port %d", netaddr.IPv4String(x.target), x.port)
					}
					if x.dst != nil {
						if *x.dst != pm {
							t.Fatalf("unicast probe to %v, want %v", *x.dst, pm)
						}
						uni++
					}
				}
				if s.Unicast >= 0 && uni != s.Unicast {
					t.Fatalf("step %d: %d unicast solicitations, want %d", i, uni, s.Unicast)
				}
			}
		})
	}
}

func TestSeqAndFailures(t *testing.T) {
	h := newHarness(t, 1)
	h.resolve(peerIP)
	h.at(0)
	e := h.m.Table(0).Lookup(peerIP)
	s0, f0 := e.Seq(), e.Failures()
	h.run(sec(0.1), sec(3))
	if e.State() != Failed || e.Seq() == s0 || e.Failures() != f0+1 {
		t.Fatalf("state %v seq %d->%d failures %d", e.State(), s0, e.Seq(), e.Failures())
	}
	// A new send restarts INCOMPLETE; Failures still tells a queued packet.
	h.resolve(peerIP)
	h.at(sec(4))
	if e.State() != Incomplete || e.Failures() != f0+1 {
		t.Fatalf("state %v failures %d", e.State(), e.Failures())
	}
	st := h.m.Stats()
	if st.ResFailed != 1 || st.Allocs != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMcastSolicitZeroFailsAtOnce(t *testing.T) {
	p := DefaultParams()
	p.MCastSolicit = 0
	h := newHarness(t, 1, ethPort("port0", p))
	h.resolve(peerIP)
	h.at(0)
	if s := h.state(peerIP); s != Failed {
		t.Fatalf("state %v", s)
	}
	if n := len(h.tx.list()); n != 0 {
		t.Fatalf("%d solicitations", n)
	}
}

func TestProbeResolicitBroadcasts(t *testing.T) {
	p := DefaultParams()
	p.UCastSolicit = 1
	p.MCastResolicit = 2
	h := newHarness(t, 1, ethPort("port0", p))
	h.request(peerIP, peerMAC, ourIP)
	h.at(0)
	h.touch(peerIP)
	h.at(sec(1))
	for i := 6; i <= 9; i++ {
		h.at(sec(float64(i)))
	}
	sent := h.tx.list()
	if len(sent) != 3 || sent[0].dst == nil || sent[1].dst != nil || sent[2].dst != nil {
		t.Fatalf("solicitations %+v", sent)
	}
	if s := h.state(peerIP); s != Failed {
		t.Fatalf("state %v", s)
	}
}

func TestSinglePortEntries(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  PortConfig
		mac  netaddr.MAC
	}{
		{"noarp", PortConfig{Name: "port1", MAC: ourMAC, NoARP: true}, ourMAC},
		{"p2p", PortConfig{Name: "tun0", MAC: ourMAC, PointToPoint: true}, netaddr.BroadcastMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1, tc.cfg)
			tb := h.m.Table(0)
			a, b := tb.Lookup(peerIP), tb.Lookup(0x08080808)
			if a == nil || a != b || a.State() != NoARP {
				t.Fatalf("lookup %p %p", a, b)
			}
			if mac, ok := a.MAC(); !ok || mac != tc.mac {
				t.Fatalf("mac %v %v", mac, ok)
			}
			for i := uint32(0); i < 1000; i++ {
				h.m.Resolve(0, 0, 0x0a000000+i)
				h.m.ARPReceived(0, 0, 1, 0x0a000000+i, peerMAC, ourIP)
			}
			h.at(sec(100))
			if n := len(h.m.Entries(0)); n != 1 {
				t.Fatalf("%d entries, want 1", n)
			}
			if tb.Lookup(1).State() != NoARP || len(h.tx.list()) != 0 {
				t.Fatal("single entry changed or solicited")
			}
			err := h.m.Apply(Request{Cmd: CmdAdd, Port: 0, IP: peerIP, MAC: peerMAC, HasMAC: true, State: Permanent})
			if !errors.Is(err, ErrNoARPPort) {
				t.Fatalf("add on %s port: %v", tc.name, err)
			}
		})
	}
}

func TestMulticastAndBroadcastNeedNoARP(t *testing.T) {
	h := newHarness(t, 1)
	h.resolve(0xe0000005) // 224.0.0.5
	h.resolve(0xe1817f01) // 225.129.127.1
	h.resolve(0xffffffff)
	h.at(0)
	want := map[uint32]netaddr.MAC{
		0xe0000005: {0x01, 0, 0x5e, 0, 0, 5},
		0xe1817f01: {0x01, 0, 0x5e, 0x01, 0x7f, 0x01},
		0xffffffff: netaddr.BroadcastMAC,
	}
	for ip, w := range want {
		e := h.m.Table(0).Lookup(ip)
		if e == nil || e.State() != NoARP {
			t.Fatalf("%s: %v", netaddr.IPv4String(ip), e)
		}
		if mac, ok := e.MAC(); !ok || mac != w {
			t.Fatalf("%s: mac %v", netaddr.IPv4String(ip), mac)
		}
	}
	if len(h.tx.list()) != 0 {
		t.Fatal("solicited a multicast address")
	}
}

func TestBogusARPIgnored(t *testing.T) {
	h := newHarness(t, 1)
	h.request(0, peerMAC, ourIP)                                  // DAD probe
	h.request(peerIP, netaddr.MAC{0x01, 0, 0x5e, 0, 0, 1}, ourIP) // multicast sender MAC
	h.request(0xe0000001, peerMAC, ourIP)                         // multicast sender
	h.request(ourIP, peerMAC, ourIP)                              // someone claims our address
	h.m.ARPReceived(0, 0, 3, peerIP, peerMAC, ourIP)              // not a request/reply
	h.at(0)
	if es := h.m.Entries(-1); len(es) != 0 {
		t.Fatalf("learned %v", es)
	}
	// A sender sharing our MAC (a net_tap port's kernel side) is learned.
	h.request(peerIP, ourMAC, ourIP)
	h.at(0)
	if es := h.m.Entries(-1); len(es) != 1 {
		t.Fatalf("did not learn a sender with our MAC: %v", es)
	}
}

func TestGC(t *testing.T) {
	p := DefaultParams()
	p.GCThresh1, p.GCThresh2, p.GCThresh3 = 4, 8, 16
	p.GCInterval = 30 * time.Second
	h := newHarness(t, 1, ethPort("port0", p))
	// Below gc_thresh1 nothing goes, however old.
	h.request(peerIP, peerMAC, ourIP)
	h.at(0)
	h.at(sec(1000))
	if h.state(peerIP) != Stale {
		t.Fatal("entry collected below gc_thresh1")
	}
	// Above it, FAILED and stale-unused entries go; PERMANENT stays.
	if err := h.m.Apply(Request{Cmd: CmdAdd, Port: 0, IP: otherIP, MAC: newMAC, HasMAC: true, State: Permanent}); err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < 4; i++ {
		h.resolve(0x0a000000 + i) // will fail
	}
	h.run(sec(1001), sec(1005))
	if h.state(0x0a000000) != Failed || len(h.m.Entries(0)) != 6 {
		t.Fatalf("entries %v", h.m.Entries(0))
	}
	h.at(sec(1031))
	es := h.m.Entries(0)
	if len(es) != 1 || es[0].IP != otherIP {
		t.Fatalf("after periodic gc: %v", es)
	}
	if st := h.m.Stats(); st.PeriodicGCRuns == 0 || st.Destroys != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestForcedGCOrder(t *testing.T) {
	p := DefaultParams()
	p.GCThresh1, p.GCThresh2, p.GCThresh3 = 2, 4, 8
	h := newHarness(t, 1, ethPort("port0", p))
	if err := h.m.Apply(Request{Cmd: CmdAdd, Port: 0, IP: otherIP, MAC: newMAC, HasMAC: true, State: Permanent}); err != nil {
		t.Fatal(err)
	}
	// Four STALE entries, oldest first, then three that will fail, all
	// within the first 5 s so the gc_thresh2 pass cannot touch them.
	for i := uint32(0); i < 4; i++ {
		h.request(0x0a000000+i, peerMAC, ourIP)
		h.at(sec(0.1 * float64(i)))
	}
	for i := uint32(0); i < 3; i++ {
		h.resolve(0x0b000000 + i)
	}
	h.run(sec(0.5), sec(4))
	if n := len(h.m.Entries(0)); n != 8 {
		t.Fatalf("setup: %d entries", n)
	}
	// At gc_thresh3 the next creation evicts down to gc_thresh2: the FAILED
	// ones first, then the oldest STALE.
	h.at(sec(7))
	h.request(0x0c000000, peerMAC, ourIP)
	h.at(sec(7))
	es := h.m.Entries(0)
	if len(es) != 5 {
		t.Fatalf("%d entries: %v", len(es), es)
	}
	for _, e := range es {
		if e.State == Failed || e.IP == 0x0a000000 {
			t.Fatalf("evicted the wrong ones: %v", es)
		}
	}
	if st := h.m.Stats(); st.ForcedGCRuns == 0 || st.TableFulls != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRingFullDropsAndCounts(t *testing.T) {
	h := newHarness(t, 2)
	for i := 0; i < RingSize; i++ {
		if !h.m.Resolve(1, 0, 0x0a000000+uint32(i)) {
			t.Fatalf("push %d failed", i)
		}
	}
	if h.m.Resolve(1, 0, 0x0b000000) || h.m.ARPReceived(1, 0, 1, peerIP, peerMAC, ourIP) {
		t.Fatal("push into a full ring succeeded")
	}
	if !h.m.Resolve(0, 0, 0x0b000000) {
		t.Fatal("other core's ring affected")
	}
	if h.m.Resolve(9, 0, 1) || h.m.Resolve(0, 9, 1) || h.m.ARPReceived(-1, 0, 1, 1, peerMAC, 2) {
		t.Fatal("bad core/port accepted")
	}
	if st := h.m.Stats(); st.EventDrops != 2 {
		t.Fatalf("drops %d", st.EventDrops)
	}
	h.at(0)
	if h.m.Table(0).Lookup(0x0b000000) == nil {
		t.Fatal("event lost")
	}
}

func TestParamsValidation(t *testing.T) {
	h := newHarness(t, 1)
	bad := []func(*Params){
		func(p *Params) { p.BaseReachableTime = 0 },
		func(p *Params) { p.RetransTime = -1 },
		func(p *Params) { p.MCastSolicit = -1 },
		func(p *Params) { p.GCThresh3 = 0 },
		func(p *Params) { p.GCThresh3 = maxThresh3 + 1 },
		func(p *Params) { p.Locktime = -time.Second },
	}
	for i, f := range bad {
		p := DefaultParams()
		f(&p)
		if err := h.m.SetParams(0, p); err == nil {
			t.Errorf("case %d: accepted %+v", i, p)
		}
	}
	if err := h.m.SetParams(5, DefaultParams()); !errors.Is(err, ErrNoPort) {
		t.Fatal(err)
	}
	p := DefaultParams()
	p.GCThresh3 = 4096
	if err := h.m.SetParams(0, p); err != nil {
		t.Fatal(err)
	}
	if n := len(h.m.Table(0).cur.Load().s); n != 8192 {
		t.Fatalf("capacity %d", n)
	}
	got, _ := h.m.Params(0)
	if got != p {
		t.Fatal("params not stored")
	}
	// Invalid params at construction fall back to the defaults.
	bp := DefaultParams()
	bp.GCThresh3 = -1
	m := NewManager([]PortConfig{ethPort("p", bp)}, 1, nil, nil, nil)
	if got, _ := m.Params(0); got != DefaultParams() {
		t.Fatal("invalid params kept")
	}
}

func TestReachableTimeRandomized(t *testing.T) {
	m := NewManager([]PortConfig{ethPort("p", Params{})}, 1, &fakeClock{t: t0}, nil, nil)
	base := 30 * time.Second
	for i := 0; i < 200; i++ {
		r := time.Duration(m.randReach(base))
		if r < base/2 || r >= base*3/2 {
			t.Fatalf("reachable_time %v outside [0.5,1.5)×%v", r, base)
		}
	}
	if r := m.ReachableTime(0); r < base/2 || r >= base*3/2 {
		t.Fatalf("initial reachable_time %v", r)
	}
}

func ExampleFormat() {
	fmt.Println(Format(EntryInfo{IP: peerIP, MAC: peerMAC, HasMAC: true, State: Reachable}, "port0"))
	fmt.Println(Format(EntryInfo{IP: 0xc0000209, MAC: peerMAC, HasMAC: true, State: Failed}, "port0"))
	fmt.Println(Format(EntryInfo{IP: otherIP, State: Incomplete}, "port0"))
	// Output:
	// 192.0.2.2 dev port0 lladdr 02:11:22:33:44:55 REACHABLE
	// 192.0.2.9 dev port0 FAILED
	// 192.0.2.3 dev port0 INCOMPLETE
}
