package pipeline

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"ferry/cache/neigh"
	"ferry/fib"
	"ferry/netaddr"
)

var (
	ipR0 = ip4(192, 0, 2, 1)
	ipA  = ip4(192, 0, 2, 2)
	ipR1 = ip4(198, 51, 100, 1)
	ipB  = ip4(198, 51, 100, 2)
)

func (h *harness) permanent(port int, ip uint32, mac netaddr.MAC) {
	h.t.Helper()
	err := h.nm.Apply(neigh.Request{Cmd: neigh.CmdAdd, Port: port, IP: ip, MAC: mac, HasMAC: true, State: neigh.Permanent})
	if err != nil {
		h.t.Fatal(err)
	}
	h.step(0)
}

func ipOf(f []byte) []byte { return f[EthHdrLen:] }

func checkIPv4(t *testing.T, f []byte) {
	t.Helper()
	ip := ipOf(f)
	if !ipv4HeaderOK(ip, int(ip[0]&0xf)*4) {
		t.Fatalf("bad IPv4 header checksum in % x", ip[:20])
	}
}

func TestARPRequestForUsIsAnswered(t *testing.T) {
	h := newHarness(t)
	out := h.burst(sent{0, arpFrame(1, netaddr.BroadcastMAC, macA, ipA, ipR0, netaddr.MAC{})})
	if len(out) != 1 || out[0].port != 0 {
		t.Fatalf("want one reply on port0, got %d frames", len(out))
	}
	f := out[0].frame
	a := f[EthHdrLen:]
	if netaddr.MAC(f[0:6]) != macA || netaddr.MAC(f[6:12]) != macR0 || be.Uint16(a[ArpOpOff:]) != 2 ||
		netaddr.MAC(a[ArpShaOff:ArpShaOff+6]) != macR0 || be.Uint32(a[ArpSpaOff:]) != ipR0 ||
		netaddr.MAC(a[ArpThaOff:ArpThaOff+6]) != macA || be.Uint32(a[ArpTpaOff:]) != ipA {
		t.Fatalf("bad ARP reply % x", f[:42])
	}
	// A request for someone else is not answered.
	if out := h.burst(sent{0, arpFrame(1, netaddr.BroadcastMAC, macA, ipA, ip4(192, 0, 2, 77), netaddr.MAC{})}); len(out) != 0 {
		t.Fatalf("answered ARP for an address that is not ours")
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}

func TestEchoReply(t *testing.T) {
	h := newHarness(t)
	h.permanent(0, ipA, macA)
	out := h.burst(sent{0, echoRequest(macR0, macA, ipA, ipR0, 64, 1)})
	if len(out) != 1 || out[0].port != 0 {
		t.Fatalf("want one reply on port0, got %v", out)
	}
	f := out[0].frame
	checkIPv4(t, f)
	ip := ipOf(f)
	if netaddr.MAC(f[0:6]) != macA || be.Uint32(ip[ipSrc:]) != ipR0 || be.Uint32(ip[ipDst:]) != ipA || ip[20] != ICMPEchoReply {
		t.Fatalf("bad echo reply % x", f[:40])
	}
	if checksum(ip[20:], 0) != 0 {
		t.Fatalf("bad ICMP checksum")
	}
	// The router answers for its other port's address too.
	if out := h.burst(sent{0, echoRequest(macR0, macA, ipA, ipR1, 64, 2)}); len(out) != 1 {
		t.Fatalf("no reply for 198.51.100.1")
	}
}

func TestForward(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	in := echoRequest(macR0, macA, ipA, ipB, 64, 1)
	out := h.burst(sent{0, in})
	if len(out) != 1 || out[0].port != 1 {
		t.Fatalf("want one frame on port1, got %v", out)
	}
	f := out[0].frame
	checkIPv4(t, f)
	if netaddr.MAC(f[0:6]) != macB || netaddr.MAC(f[6:12]) != macR1 {
		t.Fatalf("bad L2 rewrite % x", f[:14])
	}
	if ipOf(f)[ipTTL] != 63 {
		t.Fatalf("TTL %d, want 63", ipOf(f)[ipTTL])
	}
	// Via a gateway: the frame goes to the gateway's MAC.
	out = h.burst(sent{0, echoRequest(macR0, macA, ipA, ip4(203, 0, 113, 5), 64, 1)})
	if len(out) != 1 || netaddr.MAC(out[0].frame[0:6]) != macB {
		t.Fatalf("via gateway: %v", out)
	}
}

// With a data plane that runs the usual frame's checks itself (IO.Parses)
// the pipeline writes it the ports' MACs and takes its marks: a marked
// frame is routed by its record without the checks again, an unmarked one
// takes them all.
func TestDataPlaneParses(t *testing.T) {
	h := newHarness(t)
	var macs [MaxPorts]uint64
	h.io.Parses, h.io.PortMAC = true, &macs
	h.permanent(0, ipA, macA)
	h.permanent(1, ipB, macB)
	// pass runs frames as the data plane would hand them in, marked by
	// mark (nil: as ParseUsual does with the MACs the pipeline wrote).
	pass := func(mark func(r *RxPkt), frames ...[]byte) []sent {
		h.rxN = uint32(len(frames))
		for i, f := range frames {
			h.rx(i, h.newBuf(), f, 0)
			r := &h.io.Rx[i]
			if mark != nil {
				mark(r)
			} else {
				r.Usual = ParseUsual(r, macs[r.Port], false)
			}
		}
		h.p.Process()
		return h.collect()
	}
	// Before its first pass the pipeline has written no MAC: nothing is
	// marked, and the frame is forwarded all the same.
	in := echoRequest(macR0, macA, ipA, ipB, 64, 1)
	if out := pass(nil, in); len(out) != 1 || out[0].port != 1 || ipOf(out[0].frame)[ipTTL] != 63 {
		t.Fatalf("unmarked frame: %v", out)
	}
	if macs[0] != MACWord(macR0) || macs[1] != MACWord(macR1) {
		t.Fatalf("port MACs %#x %#x, want %#x %#x", macs[0], macs[1], MACWord(macR0), MACWord(macR1))
	}
	lookups := h.counter(FIBLookups)
	if out := pass(nil, in, in); len(out) != 2 || h.counter(FIBLookups) != lookups+1 || h.counter(HintHits) != 1 {
		t.Fatalf("marked frames: %d sent, %d lookups, %d hint hits", len(out), h.counter(FIBLookups)-lookups, h.counter(HintHits))
	}
	// The record, not the header, is what a marked frame is routed by.
	noRoute := h.counter(DropNoRoute)
	out := pass(func(r *RxPkt) {
		ParseUsual(r, macs[r.Port], false)
		r.Dst, r.Usual = ip4(100, 64, 0, 1), true
	}, in)
	for _, o := range out {
		if o.port != 0 || ipOf(o.frame)[ipProto] != ProtoICMP {
			t.Fatalf("marked to an unrouted address, sent on port %d: % x", o.port, o.frame)
		}
	}
	if h.counter(DropNoRoute) != noRoute+1 {
		t.Fatalf("marked to an unrouted address: %d no-route drops", h.counter(DropNoRoute)-noRoute)
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}

// A pass as large as the lists hold, all to one port, leaves whole and in
// order: the transmit list takes a pass's worth.
func TestFullPassToOnePort(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	in := make([]sent, RxMax)
	for i := range in {
		in[i] = sent{0, echoRequest(macR0, macA, ipA, ip4(203, 0, 113, byte(i)), 64, uint16(i))}
	}
	out := h.burst(in...)
	if len(out) != RxMax {
		t.Fatalf("%d of %d frames sent (tx_full drops: %d)", len(out), RxMax, h.counter(DropTxFull))
	}
	for i, o := range out {
		if o.port != 1 || be.Uint32(ipOf(o.frame)[ipDst:]) != ip4(203, 0, 113, byte(i)) {
			t.Fatalf("frame %d: port %d, to %s", i, o.port, netaddr.IPv4String(be.Uint32(ipOf(o.frame)[ipDst:])))
		}
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers held", h.held())
	}
}

// Packets to destinations under different next hops, interleaved in runs
// of every length, and a few that are not the usual forward: each leaves
// by its own route, in order, with the right Ethernet header.
func TestInterleavedDecisions(t *testing.T) {
	h := newHarness(t)
	macC := netaddr.MAC{0x02, 0, 0, 0, 0, 0xc0}
	ipC := ip4(198, 51, 100, 3)
	h.permanent(1, ipB, macB)
	h.permanent(1, ipC, macC)
	h.permanent(0, ipA, macA)
	h.addRoute("10.1.0.0/16", "via", "198.51.100.3", "dev", "port1")
	h.addRoute("10.2.0.0/16", "via", "192.0.2.2", "dev", "port0")
	r := rand.New(rand.NewSource(7))
	type want struct {
		port int
		mac  netaddr.MAC
	}
	var in []sent
	var wants []want
	for len(in) < RxMax {
		var dst uint32
		var w want
		switch r.Intn(5) {
		case 0, 1:
			dst, w = ip4(203, 0, 113, byte(r.Intn(256))), want{1, macB}
		case 2:
			dst, w = ip4(10, 1, byte(r.Intn(256)), 1), want{1, macC}
		case 3:
			dst, w = ip4(10, 2, byte(r.Intn(256)), 1), want{0, macA} // back out of port0: not the usual forward
		default:
			dst, w = ipB, want{1, macB} // on the link
		}
		for n := 1 + r.Intn(4); n > 0 && len(in) < RxMax; n-- {
			in = append(in, sent{0, echoRequest(macR0, macA, ipA, dst, 64, uint16(len(in)))})
			wants = append(wants, w)
		}
	}
	out := h.burst(in...)
	// Each port's echo requests, in the order sent; the redirects sent
	// back for the packets that left by their input port are left out.
	var byPort [2][]sent
	for _, o := range out {
		if ipOf(o.frame)[IPv4MinHdr] == ICMPEcho {
			byPort[o.port] = append(byPort[o.port], o)
		}
	}
	var next [2]int
	for i, w := range wants {
		if next[w.port] >= len(byPort[w.port]) {
			t.Fatalf("packet %d (to port%d) not sent", i, w.port)
		}
		got := byPort[w.port][next[w.port]]
		next[w.port]++
		if seq := be.Uint16(ipOf(got.frame)[26:]); int(seq) != i {
			t.Fatalf("port%d: packet %d where %d was due", w.port, seq, i)
		}
		if netaddr.MAC(got.frame[0:6]) != w.mac || ipOf(got.frame)[ipTTL] != 63 {
			t.Fatalf("packet %d to %s: to %s with TTL %d, want %s", i, netaddr.IPv4String(be.Uint32(ipOf(got.frame)[ipDst:])), netaddr.MAC(got.frame[0:6]), ipOf(got.frame)[ipTTL], w.mac)
		}
	}
	if next[0] != len(byPort[0]) || next[1] != len(byPort[1]) {
		t.Fatalf("more echo requests sent than received")
	}
}

// withOptions returns a copy of an IPv4 frame with four NOP option bytes
// after its header.
func withOptions(f []byte) []byte {
	out := append([]byte(nil), f[:EthHdrLen+IPv4MinHdr]...)
	out = append(out, 1, 1, 1, 1)
	out = append(out, f[EthHdrLen+IPv4MinHdr:]...)
	ip := out[EthHdrLen:]
	ip[ipVerIHL] = 0x46
	be.PutUint16(ip[ipTotLen:], be.Uint16(ip[ipTotLen:])+4)
	setIPv4Checksum(ip, 24)
	return out
}

// A header with options takes the general checks and is forwarded.
func TestForwardWithOptions(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	out := h.burst(sent{0, withOptions(echoRequest(macR0, macA, ipA, ipB, 64, 1))})
	if len(out) != 1 || out[0].port != 1 {
		t.Fatalf("want one frame on port1, got %v", out)
	}
	ip := ipOf(out[0].frame)
	if ip[ipVerIHL] != 0x46 || ip[ipTTL] != 63 || checksum(ip[:24], 0) != 0 {
		t.Fatalf("bad forwarded header % x", ip[:24])
	}
}

func TestTTLExceeded(t *testing.T) {
	h := newHarness(t)
	h.permanent(0, ipA, macA)
	h.permanent(1, ipB, macB)
	in := echoRequest(macR0, macA, ipA, ipB, 1, 1)
	out := h.burst(sent{0, in})
	if len(out) != 1 || out[0].port != 0 {
		t.Fatalf("want an ICMP error back on port0, got %v", out)
	}
	f := out[0].frame
	checkIPv4(t, f)
	ip := ipOf(f)
	if be.Uint32(ip[ipSrc:]) != ipR0 || be.Uint32(ip[ipDst:]) != ipA || ip[20] != ICMPTimeExceeded || ip[21] != 0 {
		t.Fatalf("bad time exceeded % x", ip[:28])
	}
	// The quote starts with the original IP header.
	if be.Uint32(ip[28+ipDst:]) != ipB {
		t.Fatalf("quote does not hold the original header")
	}
	if checksum(ip[20:], 0) != 0 {
		t.Fatal("bad ICMP checksum")
	}
}

func TestNetUnreachable(t *testing.T) {
	h := newHarness(t)
	h.permanent(0, ipA, macA)
	out := h.burst(sent{0, echoRequest(macR0, macA, ipA, ip4(10, 9, 9, 9), 64, 1)})
	if len(out) != 1 {
		t.Fatalf("want net unreachable, got %v", out)
	}
	ip := ipOf(out[0].frame)
	if ip[20] != ICMPDestUnreach || ip[21] != CodeNetUnreach {
		t.Fatalf("got ICMP %d/%d", ip[20], ip[21])
	}
	if h.counter(DropNoRoute) != 1 {
		t.Fatalf("drop_no_route = %d", h.counter(DropNoRoute))
	}
}

func TestBadPacketsAreCountedDrops(t *testing.T) {
	h := newHarness(t)
	good := echoRequest(macR0, macA, ipA, ipB, 64, 1)
	badSum := append([]byte(nil), good...)
	badSum[EthHdrLen+ipCsum] ^= 0xff
	badVer := append([]byte(nil), good...)
	badVer[EthHdrLen] = 0x65
	badLen := append([]byte(nil), good...)
	be.PutUint16(badLen[EthHdrLen+ipTotLen:], 2000)
	short := good[:20]
	other := append([]byte(nil), good...)
	copy(other[0:6], []byte{0x02, 9, 9, 9, 9, 9})
	fix := func(f []byte) []byte {
		ip := f[EthHdrLen:]
		setIPv4Checksum(ip, int(ip[ipVerIHL]&0xf)*4)
		return f
	}
	badIHL := append([]byte(nil), good...)
	badIHL[EthHdrLen] = 0x44
	hugeIHL := append([]byte(nil), good[:EthHdrLen+24]...)
	hugeIHL[EthHdrLen] = 0x4f
	optSum := withOptions(good)
	optSum[EthHdrLen+ipCsum] ^= 0xff
	optLen := withOptions(good)
	be.PutUint16(optLen[EthHdrLen+ipTotLen:], 22)
	optLen = fix(optLen)
	martianSrc := append([]byte(nil), good...)
	be.PutUint32(martianSrc[EthHdrLen+ipSrc:], ip4(127, 0, 0, 1))
	martianDst := append([]byte(nil), good...)
	be.PutUint32(martianDst[EthHdrLen+ipDst:], ip4(0, 1, 2, 3))
	ipv6 := append([]byte(nil), good...)
	be.PutUint16(ipv6[EthTypeOff:], 0x86dd)
	cases := []struct {
		name  string
		frame []byte
		ctr   Counter
	}{
		{"checksum", badSum, DropIPChecksum},
		{"version", badVer, DropIPVersion},
		{"total length", badLen, DropIPTotalLen},
		{"short", short, DropShort},
		{"not for us", other, DropNotForUs},
		{"header length below 20", badIHL, DropIPHeaderLen},
		{"header longer than the frame", hugeIHL, DropIPHeaderLen},
		{"options, checksum", optSum, DropIPChecksum},
		{"options, total length below header", optLen, DropIPTotalLen},
		{"martian source", fix(martianSrc), DropMartianSrc},
		{"martian destination", fix(martianDst), DropMartianDst},
		{"ethertype", ipv6, DropEtherType},
		{"runt", good[:10], DropShort},
	}
	for _, c := range cases {
		before := h.counter(c.ctr)
		if out := h.burst(sent{0, c.frame}); len(out) != 0 {
			t.Errorf("%s: forwarded a bad packet", c.name)
		}
		if h.counter(c.ctr) != before+1 {
			t.Errorf("%s: %s not counted", c.name, c.ctr.Name())
		}
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}

func TestRouteHintsReuseDecision(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	var in []sent
	for i := 0; i < BurstSize; i++ {
		in = append(in, sent{0, echoRequest(macR0, macA, ipA, ipB, 64, uint16(i))})
	}
	out := h.burst(in...)
	if len(out) != BurstSize {
		t.Fatalf("forwarded %d of %d", len(out), BurstSize)
	}
	if h.counter(FIBLookups) != 1 || h.counter(HintHits) != BurstSize-1 {
		t.Fatalf("fib lookups %d, hint hits %d", h.counter(FIBLookups), h.counter(HintHits))
	}
	// One neighbour lookup for the whole sublist.
	if h.counter(NeighLookups) != 1 {
		t.Fatalf("neighbour lookups %d, want 1", h.counter(NeighLookups))
	}
	// Order is kept.
	for i, s := range out {
		if got := be.Uint16(ipOf(s.frame)[26:]); got != uint16(i) {
			t.Fatalf("packet %d carries seq %d", i, got)
		}
	}
}

func TestUnresolvedNeighbourQueuesThenReleasesInOrder(t *testing.T) {
	h := newHarness(t)
	var in []sent
	for i := 0; i < 5; i++ {
		in = append(in, sent{0, echoRequest(macR0, macA, ipA, ipB, 64, uint16(i))})
	}
	if out := h.burst(in...); len(out) != 0 {
		t.Fatalf("sent %d frames before resolution", len(out))
	}
	h.step(time.Millisecond) // the owner creates INCOMPLETE and solicits
	out := h.burst()
	var req []byte
	for _, s := range out {
		if be.Uint16(s.frame[EthTypeOff:]) == EtherARP {
			req = s.frame
		}
	}
	if req == nil || netaddr.MAC(req[0:6]) != netaddr.BroadcastMAC || be.Uint32(req[EthHdrLen+ArpTpaOff:]) != ipB || be.Uint32(req[EthHdrLen+ArpSpaOff:]) != ipR1 {
		t.Fatalf("no ARP request for B on port1: %v", out)
	}
	// B answers.
	h.burst(sent{1, arpFrame(2, macR1, macB, ipB, ipR1, macR1)})
	h.step(time.Millisecond)
	out = h.burst()
	if len(out) != 5 {
		t.Fatalf("released %d of 5 queued packets", len(out))
	}
	for i, s := range out {
		if netaddr.MAC(s.frame[0:6]) != macB || be.Uint16(ipOf(s.frame)[26:]) != uint16(i) {
			t.Fatalf("released packet %d wrong or out of order", i)
		}
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}

// Packets that arrive in the pass that finds a waited-for gateway
// resolved leave after the ones that waited for it, not before.
func TestReleasedNeighbourQueueKeepsFlowOrder(t *testing.T) {
	h := newHarness(t)
	far := ip4(203, 0, 113, 5) // via B: the forward runs' fast path
	var in []sent
	for i := 0; i < 5; i++ {
		in = append(in, sent{0, echoRequest(macR0, macA, ipA, far, 64, uint16(i))})
	}
	h.burst(in...)
	h.step(time.Millisecond)
	h.burst()
	h.burst(sent{1, arpFrame(2, macR1, macB, ipB, ipR1, macR1)})
	h.step(time.Millisecond)
	in = in[:0]
	for i := 5; i < 10; i++ {
		in = append(in, sent{0, echoRequest(macR0, macA, ipA, far, 64, uint16(i))})
	}
	out := append(h.burst(in...), h.burst()...)
	if len(out) != 10 {
		t.Fatalf("sent %d of 10 packets", len(out))
	}
	for i, s := range out {
		if seq := be.Uint16(ipOf(s.frame)[26:]); seq != uint16(i) {
			t.Fatalf("packet %d of the flow left as %d", seq, i)
		}
	}
}

func TestFailedNeighbourSendsHostUnreachable(t *testing.T) {
	h := newHarness(t)
	h.permanent(0, ipA, macA)
	h.burst(sent{0, echoRequest(macR0, macA, ipA, ipB, 64, 1)})
	for i := 0; i < 10; i++ {
		h.step(time.Second)
		out := h.burst()
		for _, s := range out {
			if be.Uint16(s.frame[EthTypeOff:]) == EtherIPv4 {
				ip := ipOf(s.frame)
				if ip[20] != ICMPDestUnreach || ip[21] != CodeHostUnreach || be.Uint32(ip[ipDst:]) != ipA {
					t.Fatalf("want host unreachable to A, got % x", ip[:24])
				}
				if st := h.nm.Stats(); st.UnresolvedDiscards != 1 {
					t.Fatalf("unresolved_discards %d, want 1", st.UnresolvedDiscards)
				}
				return
			}
		}
	}
	t.Fatal("no host unreachable after the neighbour failed")
}

func TestWarmForwardPathDoesNotAllocate(t *testing.T) {
	for _, rules := range []string{"", "from 172.16.0.0/12 lookup 100", "from " + netaddr.IPv4String(ipA) + " lookup main"} {
		t.Run("rule="+rules, func(t *testing.T) { testWarmForwardPath(t, rules) })
	}
}

// testWarmForwardPath checks the warm path allocates nothing with the
// policy rule given (none, one no packet matches, one all match).
func testWarmForwardPath(t *testing.T, rule string) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	if rule != "" {
		h.addRule(rule)
	}
	frame := echoRequest(macR0, macA, ipA, ip4(203, 0, 113, 9), 64, 1)
	bufs := make([]*testBuf, BurstSize)
	for i := range bufs {
		bufs[i] = h.newBuf()
	}
	load := func() {
		for i, b := range bufs {
			h.rx(i, b, frame, 0)
		}
		h.rxN = BurstSize
	}
	load()
	h.p.Process()
	allocs := testing.AllocsPerRun(200, func() {
		for p := range h.io.TxN {
			h.io.TxN[p] = 0
		}
		load()
		h.p.Process()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per burst on the warm forward path", allocs)
	}
	if h.io.TxN[1] != BurstSize {
		t.Fatalf("forwarded %d of %d", h.io.TxN[1], BurstSize)
	}
}

func TestProxyARP(t *testing.T) {
	h := newHarness(t)
	req := arpFrame(1, netaddr.BroadcastMAC, macA, ipA, ip4(203, 0, 113, 9), netaddr.MAC{})
	if out := h.burst(sent{0, req}); len(out) != 0 {
		t.Fatal("answered for a routed address with proxy_arp off")
	}
	h.setPort(0, func(p *PortInfo) { p.ProxyARP = true })
	out := h.burst(sent{0, req})
	if len(out) != 1 || netaddr.MAC(out[0].frame[EthHdrLen+ArpShaOff:EthHdrLen+ArpShaOff+6]) != macR0 {
		t.Fatalf("proxy ARP reply: %v", out)
	}
	// Never for an address routed back out of the asking port.
	if out := h.burst(sent{0, arpFrame(1, netaddr.BroadcastMAC, macA, ipA, ip4(192, 0, 2, 77), netaddr.MAC{})}); len(out) != 0 {
		t.Fatal("proxied an address on the asking port's own link")
	}
}

// Packets of one burst that share a lookup result share its decision, and
// only decisions from a nexthop's cache count as its hits.
func TestSharedResultCounters(t *testing.T) {
	cases := []struct {
		name               string
		dsts               []uint32
		hits, misses, made uint64
		noRoute            uint64
	}{
		{"one gateway, two destinations", []uint32{ip4(203, 0, 113, 5), ip4(203, 0, 113, 6), ip4(203, 0, 113, 7)}, 2, 1, 1, 0},
		// Only the two errors sent back use a nexthop's (output) cache.
		{"no route", []uint32{ip4(10, 9, 9, 9), ip4(10, 8, 8, 8)}, 1, 1, 1, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.permanent(0, ipA, macA)
			h.permanent(1, ipB, macB)
			var in []sent
			for _, d := range c.dsts {
				in = append(in, sent{0, echoRequest(macR0, macA, ipA, d, 64, 1)})
			}
			h.burst(in...)
			got := [4]uint64{h.counter(NhCacheHits), h.counter(NhCacheMisses), h.counter(DecisionsMade), h.counter(DropNoRoute)}
			want := [4]uint64{c.hits, c.misses, c.made, c.noRoute}
			if got != want {
				t.Fatalf("hits, misses, made, no route = %v, want %v", got, want)
			}
			if h.held() != 0 {
				t.Fatalf("%d buffers leaked", h.held())
			}
		})
	}
}

// A reply that resolves an INCOMPLETE entry but was broadcast, not sent
// to the router, makes it STALE, as the kernel's arp_process; a unicast
// one makes it REACHABLE.
func TestBroadcastARPReplyMakesStale(t *testing.T) {
	for _, tc := range []struct {
		dst  netaddr.MAC
		want neigh.State
	}{{netaddr.BroadcastMAC, neigh.Stale}, {macR1, neigh.Reachable}} {
		h := newHarness(t)
		h.burst(sent{0, echoRequest(macR0, macA, ipA, ipB, 64, 1)})
		h.step(time.Millisecond) // INCOMPLETE, solicited
		h.burst()
		h.burst(sent{1, arpFrame(2, tc.dst, macB, ipB, ipR1, macR1)})
		h.step(time.Millisecond)
		e := h.nm.Table(1).Lookup(ipB)
		if e == nil || e.State() != tc.want {
			t.Fatalf("reply to %v: entry %v, want %v", tc.dst, e, tc.want)
		}
	}
}

// A packet waiting for a neighbour the owner never reports on is given up
// after pendingTimeout, on the shared clock: stepped here, not waited for.
func TestPendingTimeoutOnTheSharedClock(t *testing.T) {
	h := newHarness(t)
	h.permanent(0, ipA, macA)
	h.burst(sent{0, echoRequest(macR0, macA, ipA, ipB, 64, 1)})
	if h.counter(NeighQueued) != 1 {
		t.Fatalf("queued %d packets", h.counter(NeighQueued))
	}
	h.clk.t = h.clk.t.Add(time.Duration(pendingTimeout) - time.Second) // the owner is not stepped
	if out := h.burst(); len(out) != 0 || h.counter(DropNeighFailed) != 0 {
		t.Fatalf("given up before the timeout: %d frames, %d dropped", len(out), h.counter(DropNeighFailed))
	}
	h.clk.t = h.clk.t.Add(2 * time.Second)
	out := h.burst()
	if h.counter(DropNeighFailed) != 1 || len(out) != 1 || ipOf(out[0].frame)[20] != ICMPDestUnreach {
		t.Fatalf("after the timeout: %d dropped, %d frames sent", h.counter(DropNeighFailed), len(out))
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}

// Packets of one pass whose routes go through different gateways, in any
// mix (fwdMix), each leave with their own gateway's MAC and a lower TTL,
// in their order; one that cannot take the fast way (TTL 1) is dropped as
// TTL exceeded and the others around it are still forwarded.
func TestMixedGatewaysForward(t *testing.T) {
	h := newHarness(t)
	const gws = 4
	macOf := func(g int) netaddr.MAC { m := macB; m[4] = byte(g + 1); return m }
	for g := 0; g < gws; g++ {
		if err := h.nm.Apply(neighPermanent(1, ipB+uint32(g), macOf(g))); err != nil {
			t.Fatal(err)
		}
		h.addRoute(fmt.Sprintf("10.%d.0.0/16", g), "via", netaddr.IPv4String(ipB+uint32(g)))
	}
	h.step(0)
	rng := rand.New(rand.NewSource(7))
	var in []sent
	var gwOf []int
	for i := 0; i < 96; i++ {
		g := rng.Intn(gws)
		dst := ip4(10, byte(g), byte(rng.Intn(3)), 9) // repeats: route hints too
		ttl := uint8(64)
		if i == 40 {
			ttl = 1
		}
		in = append(in, sent{0, echoRequest(macR0, macA, ipA, dst, ttl, uint16(i))})
		gwOf = append(gwOf, g)
	}
	for pass := 0; pass < 2; pass++ { // the second with warm caches
		fwd0, ttl0 := h.counter(Forwarded), h.counter(DropTTLExceeded)
		out := h.burst(in...)
		seq := -1
		fwd := 0
		for _, s := range out {
			if s.port != 1 {
				continue // the ICMP error, or its neighbour's solicitation
			}
			fwd++
			ip := s.frame[EthHdrLen:]
			i := int(be.Uint16(ip[IPv4MinHdr+6:]))
			if i <= seq {
				t.Fatalf("pass %d: packet %d sent after %d", pass, i, seq)
			}
			seq = i
			if got := netaddr.MAC(s.frame[0:6]); got != macOf(gwOf[i]) {
				t.Fatalf("pass %d: packet %d to %s, want gateway %d's %s", pass, i, got, gwOf[i], macOf(gwOf[i]))
			}
			if ip[ipTTL] != 63 || !ipv4Sum20((*[IPv4MinHdr]byte)(ip)) {
				t.Fatalf("pass %d: packet %d: TTL %d, header sum ok %v", pass, i, ip[ipTTL], ipv4Sum20((*[IPv4MinHdr]byte)(ip)))
			}
		}
		if fwd != len(in)-1 || h.counter(Forwarded)-fwd0 != uint64(len(in)-1) || h.counter(DropTTLExceeded)-ttl0 != 1 {
			t.Fatalf("pass %d: %d forwarded (counter %d), %d TTL drops; want %d and 1", pass, fwd, h.counter(Forwarded)-fwd0, h.counter(DropTTLExceeded)-ttl0, len(in)-1)
		}
	}
	// And without allocating.
	bufs := make([]*testBuf, len(in))
	for i := range bufs {
		bufs[i] = h.newBuf()
	}
	allocs := testing.AllocsPerRun(100, func() {
		for p := range h.io.TxN {
			h.io.TxN[p] = 0
		}
		for i, b := range bufs {
			h.rx(i, b, in[i].frame, 0)
		}
		h.rxN = uint32(len(in))
		h.p.Process()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pass", allocs)
	}
}

// A pass tells the FIB how many of its lookups took the exact walk for a
// block whose build a large change left waiting (operators see it as
// fib_slow_walks).
func TestPassCountsSlowWalks(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	for attempt := 0; ; attempt++ {
		// Hundreds of /16 blocks changed in one batch: their builds wait
		// until the changes pause (50 ms). Each attempt has blocks of its
		// own: those the last one walked are built at once.
		base := 10 + 2*attempt
		err := h.f.Batch(func(b *fib.Batch) error {
			for i := 0; i < 512; i++ {
				rt, err := fib.ParseRoute([]string{fmt.Sprintf("%d.%d.5.0/24", base+i>>8, i&255), "via", "198.51.100.2"}, h.f)
				if err != nil {
					return err
				}
				if err := b.Apply(fib.RouteCmd{Op: fib.OpReplace, Route: rt}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		before := h.f.SlowWalks()
		out := h.burst(sent{0, echoRequest(macR0, macA, ipA, ip4(byte(base), 1, 5, 9), 64, 1)}, sent{0, echoRequest(macR0, macA, ipA, ip4(byte(base+1), 3, 5, 9), 64, 2)})
		if len(out) != 2 || out[0].port != 1 {
			t.Fatalf("want two frames on port1, got %v", out)
		}
		if n := h.f.SlowWalks() - before; n == 2 {
			return
		} else if n != 0 || attempt == 5 {
			t.Fatalf("two lookups of waiting blocks: %d walks counted", n)
		}
		// The builds came before the pass (a slow machine): again.
	}
}

// One pass in usedSample tells the FIB which /16 blocks its lookups went
// to: route changes there are built at once.
func TestPassNotesUsedBlocks(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	h.addRoute("10.0.0.0/8", "via", "198.51.100.2")
	pass := func(dst uint32) {
		t.Helper()
		if out := h.burst(sent{0, echoRequest(macR0, macA, ipA, dst, 64, 1)}); len(out) != 1 || out[0].port != 1 {
			t.Fatalf("want a frame on port1, got %v", out)
		}
	}
	if n := h.f.UsedBlocks(); n != 0 {
		t.Fatalf("no traffic: %d blocks used", n)
	}
	pass(ip4(10, 1, 5, 9))
	for i := 1; i < usedSample; i++ {
		pass(ip4(10, 2, 5, 9))
	}
	if n := h.f.UsedBlocks(); n != 1 {
		t.Fatalf("after %d passes: %d blocks used, want 1 (the first pass's)", usedSample, n)
	}
	pass(ip4(10, 3, 5, 9))
	if n := h.f.UsedBlocks(); n != 2 {
		t.Fatalf("after %d passes: %d blocks used, want 2", usedSample+1, n)
	}
}
