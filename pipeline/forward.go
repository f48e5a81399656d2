package pipeline

import (
	"unsafe"

	"ferry/cache"
	"ferry/cache/neigh"
)

// fastFwd is what forwarding the usual packet with decision d takes,
// worked out when the decision changes: an MTU (0: d is not a forward
// one), and the gateway's Ethernet header and port when its neighbour can
// be used now (toTx); without it, the packets join the neighbour stage's
// list.
type fastFwd struct {
	d    *cache.Decision
	mtu  int
	in   uint16 // d's output port: packets that came in by it take forward
	port uint16 // toTx: the port's tx list
	toTx bool
	hdr  [EthHdrLen]byte
}

// setFast works out f for decision d.
func (p *Pipeline) setFast(f *fastFwd, d *cache.Decision) {
	*f = fastFwd{d: d, mtu: p.fastMTU(d)}
	if f.mtu == 0 {
		return
	}
	f.in = uint16(d.Port)
	if g := p.gatewayHdr(&p.gws, d); g != nil {
		f.toTx, f.port, f.hdr = true, g.port, g.hdr
	}
}

// direct reports whether the usual packets of f may go straight to the
// tx list (see nothingQueued).
func (p *Pipeline) direct(f *fastFwd) bool {
	return f.toTx && p.nothingQueued()
}

// nothingQueued reports whether no packet of the pass waits in the
// neighbour stage's list and none waits for a neighbour: only then may
// packets go straight to a tx list, since those would leave after them and
// a flow keeps its order.
func (p *Pipeline) nothingQueued() bool {
	return p.nOut == 0 && p.pending.active == 0
}

// fwdRun forwards packets from k on while they take the decision of the
// fast state (the previous packet's, or the last lookup result's) and are
// the usual kind, and returns the index of the first other one: straight
// to the port's tx list where direct says so.
func (p *Pipeline) fwdRun(pks []RxPkt, k int, st *routeState) int {
	f := &st.fast
	// A hint takes the previous packet's decision: the first packet of a
	// run must be the decision's own packet's follower to take one.
	if f.mtu == 0 || k >= len(pks) || p.route[k] == routeHint && st.prev != f.d {
		return k
	}
	hints0 := p.ctr.local[HintHits]
	var n int
	if p.direct(f) {
		n = p.fwdTx(pks[k:], p.route[k:len(pks)], st)
	} else {
		n = p.fwdOut(pks[k:], p.route[k:len(pks)], st)
	}
	if n > 0 {
		st.prev = f.d
		p.ctr.local[Forwarded] += uint64(n)
		if st.memoFrom == fromNhCache {
			p.ctr.local[NhCacheHits] += uint64(n) - (p.ctr.local[HintHits] - hints0)
		}
	}
	return k + n
}

// valEntry is a lookup value's decision for the pass, as fwdMix uses it.
type valEntry struct {
	val  int32 // -1: none
	from decFrom
	fast fastFwd
}

// valMemoN is how many lookup values a pass remembers the decisions of:
// a route's value is its nexthops' answer, so a few cover most traffic.
const valMemoN = 16

// memoVal remembers d as the decision of every packet whose lookup value
// is v (its shared Result: nothing of the packet but the value chose it).
func (p *Pipeline) memoVal(v uint16, d *cache.Decision, from decFrom) {
	e := &p.valMemo[v%valMemoN]
	if e.val == int32(v) && e.fast.d == d {
		return
	}
	e.val, e.from = int32(v), from
	p.setFast(&e.fast, d)
}

// fwdMix forwards packets from k on while their lookup values have a
// decision the pass remembers (memoVal) that sends them straight to a tx
// list, whichever port: with random destinations under a few nexthops the
// values alternate packet by packet, and a run (fwdRun) would stop at
// nearly every one. It returns the index of the first other packet.
func (p *Pipeline) fwdMix(pks []RxPkt, k int, st *routeState) int {
	if !p.nothingQueued() {
		return k
	}
	vals, memo := (*[RxMax]uint16)(p.vals[:]), &p.valMemo
	route := p.route[:len(pks)]
	ctr := &p.ctr.local
	// The tx list of the port the last packet went to, in locals: most
	// packets take the same port, whichever gateway.
	port, n := -1, 0
	var refs []uintptr
	var lens []uint16
	var last *valEntry
	start := k
	for ; k < len(pks); k++ {
		r, pk := int(route[k]), &pks[k]
		e := last
		if r >= 0 {
			v := vals[r&(RxMax-1)]
			if e = &memo[v%valMemoN]; e.val != int32(v) {
				break
			}
		} else if r != int(routeHint) || e == nil {
			break
		}
		f := &e.fast
		h := (*frameHdr)(pk.Data)
		if !f.toTx || !fastForwardable(h, pk, f) {
			break
		}
		if int(f.port) != port {
			if port >= 0 {
				p.io.TxN[port] = uint16(n)
			}
			port = int(f.port)
			refs, n = p.io.TxRef[port], int(p.io.TxN[port])
			lens = p.io.TxLen[port][:len(refs)]
		}
		if n >= len(refs) {
			break
		}
		if r < 0 {
			ctr[HintHits]++
		} else if e.from == fromNhCache {
			ctr[NhCacheHits]++
		}
		decTTL(h[EthHdrLen:])
		*(*[EthHdrLen]byte)(pk.Data) = f.hdr
		refs[n], lens[n] = uintptr(pk.Ref), pk.Len
		n++
		last = e
	}
	if port >= 0 {
		p.io.TxN[port] = uint16(n)
	}
	if last != nil {
		ctr[Forwarded] += uint64(k - start)
		st.prev = last.fast.d
	}
	return k
}

// runVal is the lookup value whose packets a run takes: the memo's, while
// the memo's decision is the run's; -1, which no value is, otherwise.
func (st *routeState) runVal() int32 {
	if st.memoDec != st.fast.d {
		return -1
	}
	return st.memoVal
}

// inRun reports whether a packet of routing class r belongs to the run:
// a hint, or a lookup that found the run's value (its addresses are not
// special: see routeSpecial).
func inRun(r int, vals *[RxMax]uint16, runVal int32) bool {
	return r >= 0 && int32(vals[r&(RxMax-1)]) == runVal || r == int(routeHint)
}

// fastForwardable reports whether a packet whose frame is h, with the
// decision f is for, can be forwarded as the runs do: not to a link-layer
// broadcast, TTL left, within the MTU, not back out of its input port.
// It loads the frame, which a whole pass has pushed out of the first-level
// cache by now; but forwarding writes that line anyway, and a record that
// carried the checks and the new TTL word from the receive checks instead
// (40 bytes, not 32) forwarded 3-4% less.
func fastForwardable(h *frameHdr, pk *RxPkt, f *fastFwd) bool {
	return h[0]&1 == 0 && h[EthHdrLen+ipTTL] > 1 && int(pk.Len)-EthHdrLen <= f.mtu && pk.Port != f.in
}

// fwdTx is fwdRun onto the tx list, for packets pks and their routing
// classes route; it returns how many packets it took. Its values live in
// registers (Go keeps few): the fast state's are read again each time.
func (p *Pipeline) fwdTx(pks []RxPkt, route []int16, st *routeState) int {
	f := &st.fast
	vals, runVal := (*[RxMax]uint16)(p.vals[:]), st.runVal()
	port := int(f.port)
	n := int(p.io.TxN[port])
	// The run stops where the tx list is full too: sendOne takes the
	// packet there.
	pks = pks[:min(len(pks), len(p.io.TxRef[port])-n)]
	refs := p.io.TxRef[port][n : n+len(pks)]
	lens := p.io.TxLen[port][n : n+len(pks)]
	ctr := &p.ctr.local
	route = route[:len(pks)]
	k := 0
	for ; k < len(pks); k++ {
		r, pk := int(route[k]), &pks[k]
		h := (*frameHdr)(pk.Data)
		if !inRun(r, vals, runVal) || !fastForwardable(h, pk, f) {
			break
		}
		ctr[HintHits] += uint64(uint16(r) >> 15)
		decTTL(h[EthHdrLen:])
		*(*[EthHdrLen]byte)(pk.Data) = f.hdr
		refs[k], lens[k] = uintptr(pk.Ref), pk.Len
	}
	p.io.TxN[port] = uint16(n + k)
	return k
}

// fwdOut is fwdRun onto the neighbour stage's list, for a gateway not yet
// usable or destinations on the link.
func (p *Pipeline) fwdOut(pks []RxPkt, route []int16, st *routeState) int {
	f := &st.fast
	vals, runVal := (*[RxMax]uint16)(p.vals[:]), st.runVal()
	out := p.out[:]
	nOut := p.nOut
	gw := f.d.Gateway
	ctr := &p.ctr.local
	route = route[:len(pks)]
	k := 0
	for ; k < len(pks); k++ {
		r, pk := int(route[k]), &pks[k]
		h := (*frameHdr)(pk.Data)
		if !inRun(r, vals, runVal) || !fastForwardable(h, pk, f) || nOut >= len(out) {
			break
		}
		ctr[HintHits] += uint64(uint16(r) >> 15)
		decTTL(h[EthHdrLen:])
		nh := gw
		if nh == 0 {
			nh = pk.Dst
		}
		o := &out[nOut]
		o.ref, o.data, o.nh, o.len, o.cap, o.port = pk.Ref, pk.Data, nh, pk.Len, pk.Cap, f.in
		nOut++
	}
	p.nOut = nOut
	return k
}

// sendOne sends a packet routeOne gave its decision: the usual forwarded
// one as the runs do, anything else by the kind of its decision.
func (p *Pipeline) sendOne(pk *RxPkt, d *cache.Decision, st *routeState) {
	f := &st.fast
	if d != f.d {
		p.setFast(f, d)
	}
	if f.mtu == 0 || !fastForwardable((*frameHdr)(pk.Data), pk, f) {
		p.dispatchOne(pk, d)
		return
	}
	decTTL(bytesAt(pk.Data, EthHdrLen+IPv4MinHdr)[EthHdrLen:])
	p.ctr.local[Forwarded]++
	if p.direct(f) && p.io.send(int(f.port), pk.Ref, int(pk.Len)) {
		*(*[EthHdrLen]byte)(pk.Data) = f.hdr
		return
	}
	p.queueOut(pk.Ref, bytesAt(pk.Data, int(pk.Cap)), int(pk.Len), d, d.NextHop(pk.Dst))
}

// dispatchOne sends a packet on its way by the kind of its decision.
func (p *Pipeline) dispatchOne(pk *RxPkt, d *cache.Decision) {
	buf := bytesAt(pk.Data, int(pk.Cap))
	l := int(pk.Len)
	switch d.Kind {
	case cache.Forward:
		p.forward(pk.Ref, buf, l, d, int(pk.Port))
	case cache.Local, cache.Broadcast:
		p.localDeliver(pk.Ref, buf, l, d, int(pk.Port))
	case cache.Blackhole:
		p.drop(pk.Ref, DropBlackhole)
	case cache.Prohibit:
		p.ctr.local[DropProhibited]++
		p.icmpError(pk.Ref, buf, l, d.ICMPType, d.ICMPCode, 0)
	default:
		if d.ICMPCode == CodeNetUnreach {
			p.ctr.local[DropNoRoute]++
		} else {
			p.ctr.local[DropHostUnreach]++
		}
		p.icmpError(pk.Ref, buf, l, d.ICMPType, d.ICMPCode, 0)
	}
}

// gwHdr is the Ethernet header for the gateway of a forward decision.
type gwHdr struct {
	d    *cache.Decision
	hdr  [EthHdrLen]byte
	port uint16
	ok   bool // the neighbour can be used now
}

// gwMemo is what a pass learned of its decisions' gateways.
type gwMemo struct {
	e [neighMemo]gwHdr
	n int
}

// gatewayHdr returns the header for d's gateway (d.Port a port) when its
// neighbour can be used now, looked up once a pass, as the neighbour stage
// does; nil (also for a destination on the link) leaves the packets to
// that stage, which also starts resolution and queues them.
func (p *Pipeline) gatewayHdr(m *gwMemo, d *cache.Decision) *gwHdr {
	if d.Gateway == 0 {
		return nil
	}
	for i := 0; i < m.n; i++ {
		if g := &m.e[i]; g.d == d {
			if g.ok {
				return g
			}
			return nil
		}
	}
	if m.n == len(m.e) {
		return nil
	}
	port := int(d.Port)
	g := &m.e[m.n]
	m.n++
	*g = gwHdr{d: d, port: uint16(port)}
	nm := p.sh.Neigh
	p.ctr.local[NeighLookups]++
	e := nm.Table(port).Lookup(d.Gateway)
	if e == nil {
		return nil
	}
	st, mac, ok := e.Load()
	if !ok || st == neigh.Stale {
		// Stale wants a probe: the neighbour stage sends it.
		return nil
	}
	nm.Touch(p.core, e)
	g.hdr = ipv4EthHdr(mac, p.ports[port].MAC)
	g.ok = true
	return g
}

// fastMTU is the MTU a forward decision's usual packets are checked
// against, or 0 when the runs do not apply.
func (p *Pipeline) fastMTU(d *cache.Decision) int {
	if d.Kind != cache.Forward || d.Port < 0 || int(d.Port) >= len(p.ports) {
		return 0
	}
	if d.MTU != 0 {
		return int(d.MTU)
	}
	return p.ports[d.Port].MTU
}

// forward is ip_forward: TTL, MTU, then the packet joins the output list.
func (p *Pipeline) forward(ref unsafe.Pointer, buf []byte, l int, d *cache.Decision, inPort int) {
	if buf[0]&1 != 0 {
		// Frames sent to a link-layer broadcast are never forwarded.
		p.drop(ref, DropBroadcastFwd)
		return
	}
	ip := buf[EthHdrLen:l]
	if ip[ipTTL] <= 1 {
		p.ctr.local[DropTTLExceeded]++
		p.icmpError(ref, buf, l, ICMPTimeExceeded, CodeTTLExceeded, 0)
		return
	}
	mtu := int(d.MTU)
	if port := int(d.Port); mtu == 0 && port < len(p.ports) {
		mtu = p.ports[port].MTU
	}
	if mtu > 0 && len(ip) > mtu {
		if be.Uint16(ip[ipFragOff:])&ipFlagDF != 0 {
			p.ctr.local[DropFragNeeded]++
			p.icmpError(ref, buf, l, ICMPDestUnreach, CodeFragNeeded, uint32(mtu))
			return
		}
		decTTL(ip)
		p.ctr.local[Forwarded]++
		p.fragment(ref, buf, l, d, mtu)
		return
	}
	decTTL(ip)
	p.ctr.local[Forwarded]++
	p.maybeRedirect(buf, l, d, inPort)
	p.queueOut(ref, buf, l, d, d.NextHop(be.Uint32(ip[ipDst:])))
}

// queueOut adds a packet with its decision to the neighbour stage's list.
func (p *Pipeline) queueOut(ref unsafe.Pointer, buf []byte, l int, d *cache.Decision, nh uint32) {
	if p.nOut >= len(p.out) || int(d.Port) >= len(p.ports) || d.Port < 0 {
		p.drop(ref, DropTxFull)
		return
	}
	o := &p.out[p.nOut]
	o.ref, o.data, o.nh, o.len, o.cap, o.port = ref, unsafe.Pointer(unsafe.SliceData(buf)), nh, uint16(l), uint16(min(len(buf), 0xffff)), uint16(d.Port)
	p.nOut++
}
