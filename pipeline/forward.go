package pipeline

import (
	"unsafe"

	"ferry/cache"
)

// dispatch sends every routed packet on its way by the kind of its decision.
// The usual forwarded packet (TTL left, within the MTU, not back out of its
// input port) is handled inline; forward takes the rest.
func (p *Pipeline) dispatch() {
	pks := p.pk[:p.nIP]
	dec := p.dec[:len(pks)]
	out := p.out[:]
	nOut := p.nOut
	// What the fast path needs of a decision, worked out when it changes.
	var fastD *cache.Decision
	fastMTU := 0
	for k := range pks {
		pk := &pks[k]
		d := dec[k]
		if d != fastD {
			fastD, fastMTU = d, p.fastMTU(d)
		}
		if fastMTU != 0 && nOut < len(out) {
			h := (*frameHdr)(pk.data)
			ipLen := int(pk.len) - EthHdrLen
			if h[0]&1 == 0 && h[EthHdrLen+ipTTL] > 1 && ipLen <= fastMTU && int(pk.port) != int(d.Port) {
				decTTL(h[EthHdrLen:])
				p.ctr.local[Forwarded]++
				o := &out[nOut]
				o.ref, o.data, o.nh, o.len, o.cap, o.port = pk.ref, pk.data, d.NextHop(pk.dst), pk.len, pk.cap, uint16(d.Port)
				nOut++
				continue
			}
		}
		p.nOut = nOut
		buf := bytesAt(pk.data, int(pk.cap))
		l := int(pk.len)
		switch d.Kind {
		case cache.Forward:
			p.forward(pk.ref, buf, l, d, int(pk.port))
		case cache.Local, cache.Broadcast:
			p.localDeliver(pk.ref, buf, l, d, int(pk.port))
		case cache.Blackhole:
			p.drop(pk.ref, DropBlackhole)
		case cache.Prohibit:
			p.ctr.local[DropProhibited]++
			p.icmpError(pk.ref, buf, l, d.ICMPType, d.ICMPCode, 0)
		default:
			if d.ICMPCode == CodeNetUnreach {
				p.ctr.local[DropNoRoute]++
			} else {
				p.ctr.local[DropHostUnreach]++
			}
			p.icmpError(pk.ref, buf, l, d.ICMPType, d.ICMPCode, 0)
		}
		nOut = p.nOut
	}
	p.nOut = nOut
}

// fastMTU is the MTU a forward decision's packets are checked against on
// dispatch's inline path, or 0 when that path does not apply.
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
