package pipeline

import (
	"unsafe"

	"ferry/cache"
)

// dispatch sends every routed packet on its way by the kind of its decision.
func (p *Pipeline) dispatch() {
	io := p.io
	for k := 0; k < p.nIP; k++ {
		i := int(p.ipList[k])
		d := p.dec[i]
		ref := io.RxRef[i]
		buf := bytesAt(io.RxData[i], int(io.RxCap[i]))
		l := int(io.RxLen[i])
		switch d.Kind {
		case cache.Forward:
			p.forward(ref, buf, l, d, int(io.RxPort[i]))
		case cache.Local, cache.Broadcast:
			p.localDeliver(ref, buf, l, d, int(io.RxPort[i]))
		case cache.Blackhole:
			p.drop(ref, DropBlackhole)
		case cache.Prohibit:
			p.ctr.local[DropProhibited]++
			p.icmpError(ref, buf, l, d.ICMPType, d.ICMPCode, 0)
		default:
			if d.ICMPCode == CodeNetUnreach {
				p.ctr.local[DropNoRoute]++
			} else {
				p.ctr.local[DropHostUnreach]++
			}
			p.icmpError(ref, buf, l, d.ICMPType, d.ICMPCode, 0)
		}
	}
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
