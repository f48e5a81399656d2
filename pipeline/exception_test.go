package pipeline

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"ferry/cache"
	"ferry/fib"
	"ferry/netaddr"
)

func (h *harness) setPort(i int, fn func(*PortInfo)) {
	ports := append([]PortInfo(nil), h.sh.Ports()...)
	fn(&ports[i])
	h.sh.SetPorts(ports)
}

func (h *harness) addRoute(args ...string) {
	h.t.Helper()
	rt, err := fib.ParseRoute(args, h.f)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.f.Add(rt); err != nil {
		h.t.Fatal(err)
	}
}

// addRule adds a policy rule, given in ip rule syntax.
func (h *harness) addRule(rule string) {
	h.t.Helper()
	ru, err := fib.ParseRule(strings.Fields(rule), h.f)
	if err == nil {
		err = h.f.AddRule(ru)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// leftAsLookup fails the test unless out holds, in order, one echo request
// for each of keys (its sequence number the index), each sent by port 1 to
// the MAC (in gws) of the gateway the FIB's exact lookup gives its key.
// rules says what the FIB held.
func (h *harness) leftAsLookup(rules string, out []sent, keys []fib.Key, gws map[uint32]netaddr.MAC) {
	h.t.Helper()
	if len(out) != len(keys) {
		h.t.Fatalf("rules %s: forwarded %d of %d", rules, len(out), len(keys))
	}
	for i, s := range out {
		k := &keys[i]
		var res fib.Result
		if h.f.Lookup(k, &res); res.Err != nil || res.Nexthop == nil {
			h.t.Fatalf("rules %s: packet %d: no nexthop (%v)", rules, i, res.Err)
		}
		want := gws[res.Nexthop.Gateway]
		if got := netaddr.MAC(s.frame[0:6]); s.port != 1 || got != want || be.Uint16(ipOf(s.frame)[26:]) != uint16(i) {
			h.t.Fatalf("rules %s: packet %d from %s to %s left by port %d to %v, want port 1 to %v", rules, i,
				netaddr.IPv4String(k.Src), netaddr.IPv4String(k.Dst), s.port, got, want)
		}
	}
}

// setMTU changes a port's MTU where ferryd does: in the FIB and the ports.
func (h *harness) setMTU(i, mtu int) {
	h.t.Helper()
	if err := h.f.SetPort(i, h.sh.Ports()[i].Name, mtu, true); err != nil {
		h.t.Fatal(err)
	}
	h.setPort(i, func(p *PortInfo) { p.MTU = mtu })
}

func bigPacket(size int, df bool) []byte {
	f := ipPacket(macR0, macA, ipA, ipB, 64, ProtoUDP, make([]byte, size-IPv4MinHdr))
	ip := ipOf(f)
	for i := IPv4MinHdr; i < len(ip); i++ {
		ip[i] = byte(i * 7)
	}
	if !df {
		be.PutUint16(ip[ipFragOff:], 0)
	}
	setIPv4Checksum(ip, IPv4MinHdr)
	return f
}

func TestFragmentWhenDFClear(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	h.setMTU(1, 1400)
	in := bigPacket(3000, false)
	out := h.burst(sent{0, in})
	if len(out) != 3 {
		t.Fatalf("%d fragments, want 3", len(out))
	}
	orig := ipOf(in)[IPv4MinHdr:]
	var got []byte
	for i, s := range out {
		checkIPv4(t, s.frame)
		ip := ipOf(s.frame)
		if len(ip) > 1400 {
			t.Fatalf("fragment %d is %d bytes, over the MTU", i, len(ip))
		}
		fo := be.Uint16(ip[ipFragOff:])
		if int(fo&ipOffsetMask)*8 != len(got) {
			t.Fatalf("fragment %d offset %d, want %d", i, int(fo&ipOffsetMask)*8, len(got))
		}
		if (fo&ipFlagMF != 0) != (i < 2) {
			t.Fatalf("fragment %d MF flag wrong", i)
		}
		if be.Uint16(ip[ipID:]) != 0x1234 || ip[ipTTL] != 63 {
			t.Fatal("fragments must keep the id and carry the decremented TTL")
		}
		got = append(got, ip[IPv4MinHdr:be.Uint16(ip[ipTotLen:])]...)
	}
	if string(got) != string(orig) {
		t.Fatal("reassembled payload differs")
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}

func TestFragNeededWhenDFSet(t *testing.T) {
	h := newHarness(t)
	h.permanent(0, ipA, macA)
	h.permanent(1, ipB, macB)
	h.setMTU(1, 1400)
	out := h.burst(sent{0, bigPacket(1500, true)})
	if len(out) != 1 || out[0].port != 0 {
		t.Fatalf("want frag-needed back to A, got %d frames", len(out))
	}
	ip := ipOf(out[0].frame)
	if ip[20] != ICMPDestUnreach || ip[21] != CodeFragNeeded || be.Uint16(ip[26:]) != 1400 {
		t.Fatalf("got ICMP %d/%d mtu %d", ip[20], ip[21], be.Uint16(ip[26:]))
	}
}

// A packet leaving by the port it came in on, to a next hop the sender
// reaches directly, is forwarded and earns the sender a host redirect.
func TestSendRedirect(t *testing.T) {
	h := newHarness(t)
	ipC := ip4(192, 0, 2, 3)
	macC := netaddr.MAC{2, 0, 0, 0, 0, 0xc0}
	h.permanent(0, ipA, macA)
	h.permanent(0, ipC, macC)
	h.addRoute("10.7.0.0/16", "via", "192.0.2.3", "dev", "port0")
	h.setPort(0, func(p *PortInfo) { p.Addrs = []netaddr.Prefix{{Addr: ipR0, Len: 24}}; p.SendRedirects = true })
	out := h.burst(sent{0, echoRequest(macR0, macA, ipA, ip4(10, 7, 0, 1), 64, 1)})
	var fwd, redir bool
	for _, s := range out {
		ip := ipOf(s.frame)
		switch {
		case netaddr.MAC(s.frame[0:6]) == macC:
			fwd = true
		case ip[ipProto] == ProtoICMP && ip[20] == ICMPRedirect:
			if ip[21] != CodeRedirectHost || be.Uint32(ip[24:]) != ipC || be.Uint32(ip[ipDst:]) != ipA {
				t.Fatalf("bad redirect % x", ip[:28])
			}
			redir = true
		}
	}
	if !fwd || !redir {
		t.Fatalf("forwarded %v, redirect %v", fwd, redir)
	}
	// The kernel's backoff: the next packet right away earns no redirect.
	out = h.burst(sent{0, echoRequest(macR0, macA, ipA, ip4(10, 7, 0, 1), 64, 2)})
	if len(out) != 1 {
		t.Fatalf("second packet: %d frames, want only the forwarded one", len(out))
	}
	// send_redirects off: none.
	h.setPort(0, func(p *PortInfo) { p.SendRedirects = false })
	h.p.redirects = redirectLimiter{}
	if out = h.burst(sent{0, echoRequest(macR0, macA, ipA, ip4(10, 7, 0, 1), 64, 3)}); len(out) != 1 {
		t.Fatalf("send_redirects off: %d frames", len(out))
	}
}

func redirectFrame(from netaddr.MAC, oldGW, newGW, innerSrc, innerDst uint32) []byte {
	inner := echoRequest(macR1, macR1, innerSrc, innerDst, 64, 9)[EthHdrLen:][:28]
	pl := make([]byte, 8+len(inner))
	pl[0], pl[1] = ICMPRedirect, CodeRedirectHost
	be.PutUint32(pl[4:], newGW)
	copy(pl[8:], inner)
	be.PutUint16(pl[2:], checksum(pl, 0))
	return ipPacket(macR1, from, oldGW, ipR1, 64, ProtoICMP, pl)
}

func TestAcceptRedirect(t *testing.T) {
	h := newHarness(t)
	ipG2 := ip4(198, 51, 100, 3)
	macG2 := netaddr.MAC{2, 0, 0, 0, 0, 0xd0}
	h.permanent(1, ipB, macB)
	h.permanent(1, ipG2, macG2)
	target := ip4(203, 0, 113, 5)
	other := ip4(203, 0, 113, 6)
	red := redirectFrame(macB, ipB, ipG2, ipR1, target)

	// accept_redirects is off by default on a router.
	h.burst(sent{1, red})
	if h.counter(RedirectsAccepted) != 0 {
		t.Fatal("accepted a redirect with accept_redirects off")
	}
	h.setPort(1, func(p *PortInfo) {
		p.AcceptRedirects, p.SecureRedirects = true, false
		p.Addrs = []netaddr.Prefix{{Addr: ipR1, Len: 24}}
	})
	// Not from the current gateway: rejected.
	h.burst(sent{1, redirectFrame(macB, ip4(198, 51, 100, 9), ipG2, ipR1, target)})
	if h.counter(RedirectsAccepted) != 0 {
		t.Fatal("accepted a redirect from a host that is not the gateway")
	}
	h.burst(sent{1, red})
	if h.counter(RedirectsAccepted) != 1 {
		t.Fatalf("redirect not accepted (rejected %d)", h.counter(DropRedirectRejected))
	}
	// Traffic to the target now goes to the new gateway; other destinations do not.
	out := h.burst(sent{0, echoRequest(macR0, macA, ipA, target, 64, 1)}, sent{0, echoRequest(macR0, macA, ipA, other, 64, 2)})
	if len(out) != 2 || netaddr.MAC(out[0].frame[0:6]) != macG2 || netaddr.MAC(out[1].frame[0:6]) != macB {
		t.Fatalf("after redirect: %v", out)
	}
	if h.f.Exceptions().Flush() == 0 {
		t.Fatal("no exception to flush")
	}
	h.gen.Bump()
	out = h.burst(sent{0, echoRequest(macR0, macA, ipA, target, 64, 3)})
	if len(out) != 1 || netaddr.MAC(out[0].frame[0:6]) != macB {
		t.Fatal("flush did not restore the route's gateway")
	}
}

// A fragmentation-needed message about a packet the router sent lowers the
// path MTU for that destination only; forwarding uses it only with
// forward_use_pmtu.
func TestPMTUException(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	h.permanent(0, ipA, macA)
	target := ip4(203, 0, 113, 7)
	inner := echoRequest(macR1, macR1, ipR1, target, 64, 1)[EthHdrLen:][:28]
	pl := make([]byte, 8+len(inner))
	pl[0], pl[1] = ICMPDestUnreach, CodeFragNeeded
	be.PutUint16(pl[6:], 1300)
	copy(pl[8:], inner)
	be.PutUint16(pl[2:], checksum(pl, 0))
	h.burst(sent{1, ipPacket(macR1, macB, ipB, ipR1, 64, ProtoICMP, pl)})
	if h.counter(PMTUUpdates) != 1 {
		t.Fatalf("pmtu not learned (rejected %d)", h.counter(DropPMTURejected))
	}
	// Forwarding ignores it by default…
	if out := h.burst(sent{0, bigPacket(1400, true)}); len(out) != 1 || out[0].port != 1 {
		t.Fatal("forwarded packet used the PMTU exception without forward_use_pmtu")
	}
	k := h.sh.Knobs()
	k.ForwardUsePMTU = true
	h.sh.SetKnobs(k)
	f := bigPacket(1400, true)
	be.PutUint32(ipOf(f)[ipDst:], target)
	setIPv4Checksum(ipOf(f), 20)
	out := h.burst(sent{0, f})
	if len(out) != 1 || out[0].port != 0 || ipOf(out[0].frame)[21] != CodeFragNeeded || be.Uint16(ipOf(out[0].frame)[26:]) != 1300 {
		t.Fatalf("with forward_use_pmtu: %v", out)
	}
}

// With policy rules there are no route hints, and each packet gets the
// decision its rules give; but consecutive packets to one destination that
// no rule with a selector can match share one lookup.
func TestRulesNoHintsSharedLookups(t *testing.T) {
	macC := netaddr.MAC{0x02, 0, 0, 0, 0, 0xc0}
	ipC := ip4(198, 51, 100, 3)
	matched := ip4(10, 1, 1, 1) // "from 10.0.0.0/8" takes table 100: via C
	near, far := ip4(203, 0, 113, 9), ip4(203, 0, 113, 200)
	type pkt struct{ src, dst uint32 }
	cases := []struct {
		name    string
		rule    string
		pkts    []pkt
		lookups uint64
	}{
		{"no packet matches", "from 10.0.0.0/8 lookup 100",
			[]pkt{{ipA, near}, {ipA, near}, {ipA, near}, {ipA, near}}, 1},
		{"one source matches", "from 10.0.0.0/8 lookup 100",
			[]pkt{{ipA, near}, {ipA, near}, {matched, near}, {ipA, near}, {ipA, near}}, 3},
		{"every source matches", "from 10.0.0.0/8 lookup 100",
			[]pkt{{matched, near}, {matched, near}, {matched, near}}, 3},
		{"destinations change", "from 10.0.0.0/8 lookup 100",
			[]pkt{{ipA, near}, {ipA, near}, {ipA, far}, {ipA, near}}, 3},
		// The filter goes by first octets: a destination selector in
		// 203/8 may match every packet here, which then looks up alone.
		{"destination selector", "to 203.0.113.128/25 lookup 100",
			[]pkt{{ipA, near}, {ipA, near}, {ipA, far}, {ipA, far}}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.permanent(1, ipB, macB)
			h.permanent(1, ipC, macC)
			h.addRoute("203.0.113.0/24", "via", "198.51.100.3", "dev", "port1", "table", "100")
			h.addRule(c.rule)
			var in []sent
			var keys []fib.Key
			for i, p := range c.pkts {
				in = append(in, sent{0, echoRequest(macR0, macA, p.src, p.dst, 64, uint16(i))})
				keys = append(keys, fib.Key{Dst: p.dst, Src: p.src, Iif: 0, Oif: -1})
			}
			h.leftAsLookup(c.rule, h.burst(in...), keys, map[uint32]netaddr.MAC{ipB: macB, ipC: macC})
			if h.counter(HintHits) != 0 || h.counter(FIBLookups) != c.lookups {
				t.Fatalf("hint hits %d, lookups %d, want 0 and %d", h.counter(HintHits), h.counter(FIBLookups), c.lookups)
			}
		})
	}
}

// Under random rule sets and bursts with runs to one destination, every
// packet leaves by the nexthop the FIB's exact lookup gives its own key.
func TestRulesForwardAsLookup(t *testing.T) {
	gws := map[uint32]netaddr.MAC{
		ipB:                  macB,
		ip4(198, 51, 100, 3): {0x02, 0, 0, 0, 0, 0xc0},
		ip4(198, 51, 100, 4): {0x02, 0, 0, 0, 0, 0xd0},
	}
	rulePool := []string{
		"from 10.0.0.0/8 lookup 100",
		"to 203.0.113.128/25 lookup 100",
		"from 172.16.0.0/12 lookup 101",
		"not from 192.0.2.0/24 lookup 101",
		"from 192.0.2.9 lookup 100",
		"iif port0 from 10.2.0.0/16 lookup 101",
	}
	srcs := []uint32{ipA, ip4(10, 1, 1, 1), ip4(10, 2, 0, 7), ip4(172, 16, 0, 5), ip4(192, 0, 2, 9)}
	dsts := []uint32{ip4(203, 0, 113, 9), ip4(203, 0, 113, 200), ip4(203, 0, 113, 77)}
	rng := rand.New(rand.NewSource(5))
	for iter := 0; iter < 60; iter++ {
		h := newHarness(t)
		for ip, mac := range gws {
			h.permanent(1, ip, mac)
		}
		h.addRoute("203.0.113.0/24", "via", "198.51.100.3", "dev", "port1", "table", "100")
		h.addRoute("203.0.113.0/25", "via", "198.51.100.4", "dev", "port1", "table", "101")
		var rules []string
		for _, r := range rulePool {
			if rng.Intn(3) == 0 {
				rules = append(rules, r)
			}
		}
		if len(rules) == 0 {
			rules = append(rules, rulePool[rng.Intn(len(rulePool))])
		}
		for _, r := range rules {
			h.addRule(r)
		}
		n := 1 + rng.Intn(64)
		src, dst := srcs[0], dsts[0]
		var in []sent
		var keys []fib.Key
		for i := 0; i < n; i++ {
			// Mostly runs: a source or a destination changes one time in four.
			if rng.Intn(4) == 0 {
				src = srcs[rng.Intn(len(srcs))]
			}
			if rng.Intn(4) == 0 {
				dst = dsts[rng.Intn(len(dsts))]
			}
			in = append(in, sent{0, echoRequest(macR0, macA, src, dst, 64, uint16(i))})
			keys = append(keys, fib.Key{Dst: dst, Src: src, Iif: 0, Oif: -1})
		}
		h.leftAsLookup(fmt.Sprintf("%q", rules), h.burst(in...), keys, gws)
		if h.held() != 0 {
			t.Fatalf("%d buffers leaked", h.held())
		}
	}
}

// A flood of fragmentation-needed messages for random destinations leaves
// the exception table within its bound.
func TestPMTUFloodBounded(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	h.addRoute("default", "via", "198.51.100.2")
	r := uint32(12345)
	var in []sent
	for i := 0; i < 100000; i++ {
		r = r*1664525 + 1013904223
		// Random destinations behind port1's gateway (the default route
		// the harness adds below) and inside 203.0.113.0/24.
		target := r | 1<<31
		if i%2 == 0 {
			target = ip4(203, 0, 113, 0) | r&0xff
		}
		inner := echoRequest(macR1, macR1, ipR1, target, 64, 1)[EthHdrLen:][:28]
		pl := make([]byte, 8+len(inner))
		pl[0], pl[1] = ICMPDestUnreach, CodeFragNeeded
		be.PutUint16(pl[6:], uint16(600+r%700))
		copy(pl[8:], inner)
		be.PutUint16(pl[2:], checksum(pl, 0))
		in = append(in, sent{1, ipPacket(macR1, macB, ipB, ipR1, 64, ProtoICMP, pl)})
		if len(in) == BurstSize {
			h.burst(in...)
			in = in[:0]
		}
	}
	total := 0
	for _, o := range h.f.Exceptions().Owners() {
		if tb := o.Cache.Exceptions(); tb != nil {
			total += tb.Len()
		}
	}
	if total == 0 || total > 4*cache.ExcBuckets*cache.ExcDepth {
		t.Fatalf("%d exceptions after the flood", total)
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}

// The router's own replies (output decisions, per core) do not allocate
// once warm.
func TestWarmOutputPathDoesNotAllocate(t *testing.T) {
	h := newHarness(t)
	h.permanent(0, ipA, macA)
	frame := echoRequest(macR0, macA, ipA, ipR0, 64, 1)
	buf := h.newBuf()
	load := func() {
		h.rx(0, buf, frame, 0)
		h.rxN = 1
	}
	load()
	h.p.Process()
	allocs := testing.AllocsPerRun(200, func() {
		h.io.TxN[0] = 0
		load()
		h.p.Process()
	})
	if allocs != 0 || h.io.TxN[0] != 1 || h.counter(ICMPEchoReplied) < 200 {
		t.Fatalf("%v allocations per echo reply (sent %d)", allocs, h.io.TxN[0])
	}
}

// With fib_multipath_hash_policy 1, flows between the same two hosts that
// differ only in their ports spread over a multipath route's nexthops;
// with the default L3 hash, and for fragments, which carry no ports, they
// all take one.
func TestMultipathHashPolicy(t *testing.T) {
	h := newHarness(t)
	ipC := ip4(198, 51, 100, 3)
	macC := netaddr.MAC{2, 0, 0, 0, 0, 0xc0}
	h.permanent(1, ipB, macB)
	h.permanent(1, ipC, macC)
	h.addRoute("10.9.0.0/16", "nexthop", "via", "198.51.100.2", "dev", "port1", "nexthop", "via", "198.51.100.3", "dev", "port1")
	udp := func(sport uint16, frag bool) sent {
		pl := make([]byte, 8+8)
		be.PutUint16(pl[0:], sport)
		be.PutUint16(pl[2:], 53)
		be.PutUint16(pl[4:], uint16(len(pl)))
		f := ipPacket(macR0, macA, ipA, ip4(10, 9, 1, 1), 64, ProtoUDP, pl)
		if frag {
			ip := ipOf(f)
			be.PutUint16(ip[ipFragOff:], ipFlagMF)
			setIPv4Checksum(ip, IPv4MinHdr)
		}
		return sent{0, f}
	}
	gateways := func(frag bool) map[netaddr.MAC]int {
		seen := map[netaddr.MAC]int{}
		for port := uint16(1000); port < 1064; port++ {
			for _, s := range h.burst(udp(port, frag)) {
				seen[netaddr.MAC(s.frame[0:6])]++
			}
		}
		return seen
	}
	if g := gateways(false); len(g) != 1 {
		t.Fatalf("L3 hash: 64 port pairs went to %v, want one gateway", g)
	}
	k := h.sh.Knobs()
	k.MultipathHashL4 = true
	h.sh.SetKnobs(k)
	if g := gateways(false); len(g) != 2 || g[macB] < 8 || g[macC] < 8 {
		t.Fatalf("L3+L4 hash: 64 port pairs went to %v, want both gateways", g)
	}
	if g := gateways(true); len(g) != 1 {
		t.Fatalf("L3+L4 hash: 64 fragments went to %v, want one gateway", g)
	}
	// In one burst, as the kernel's list receive: a multipath decision is
	// no route hint for the packets after it.
	var in []sent
	for port := uint16(1000); port < 1064; port++ {
		in = append(in, udp(port, false))
	}
	seen := map[netaddr.MAC]int{}
	for _, s := range h.burst(in...) {
		seen[netaddr.MAC(s.frame[0:6])]++
	}
	if len(seen) != 2 || seen[macB] < 8 || seen[macC] < 8 {
		t.Fatalf("one burst of 64 flows went to %v, want both gateways", seen)
	}
	if h.counter(HintHits) != 0 {
		t.Fatalf("%d route hints used for a multipath route", h.counter(HintHits))
	}
}

// Packets that dispatch sends straight to the tx list must not overtake a
// packet of the same burst that went through the neighbour stage's list
// (here one that had to be fragmented): a flow keeps its order.
func TestBurstKeepsOrderAroundFragments(t *testing.T) {
	h := newHarness(t)
	h.permanent(1, ipB, macB)
	h.setMTU(1, 1400)
	dst := ip4(203, 0, 113, 5) // via 198.51.100.2, a gateway
	big := bigPacket(3000, false)
	be.PutUint32(ipOf(big)[ipDst:], dst)
	setIPv4Checksum(ipOf(big), IPv4MinHdr)
	small := func(seq uint16) []byte { return echoRequest(macR0, macA, ipA, dst, 64, seq) }
	out := h.burst(sent{0, small(1)}, sent{0, big}, sent{0, small(2)})
	var order []string
	for _, s := range out {
		switch ip := ipOf(s.frame); {
		case ip[ipProto] == ProtoUDP:
			order = append(order, "frag")
		default:
			order = append(order, fmt.Sprintf("echo%d", be.Uint16(ip[IPv4MinHdr+6:])))
		}
		if netaddr.MAC(s.frame[0:6]) != macB || s.port != 1 {
			t.Fatalf("frame to %v on port %d, want the gateway's MAC on port 1", netaddr.MAC(s.frame[0:6]), s.port)
		}
	}
	if got := strings.Join(order, " "); got != "echo1 frag frag frag echo2" {
		t.Fatalf("sent %s, want echo1 frag frag frag echo2", got)
	}
	if h.held() != 0 {
		t.Fatalf("%d buffers leaked", h.held())
	}
}
