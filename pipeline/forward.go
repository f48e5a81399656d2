package pipeline

import (
	"unsafe"

	"ferry/cache"
	"ferry/cache/neigh"
)

// dispatch sends every routed packet on its way by the kind of its
// decision. Runs of packets with the same forward decision go through
// fwdTx or fwdOut, loops that call nothing (see ethInput), which take the
// usual forwarded packet (TTL left, within the MTU, not back out of its
// input port, not a link-layer broadcast); dispatchOne takes the rest.
func (p *Pipeline) dispatch() {
	pks := p.io.Rx[:p.nIP]
	dec := p.dec[:len(pks)]
	var gws gwMemo
	for k := 0; k < len(pks); {
		d := dec[k]
		if mtu := p.fastMTU(d); mtu != 0 {
			var n int
			// Straight to the port's tx list while no packet of the pass
			// waits in the neighbour stage's list, which would send after
			// it: a flow keeps its order.
			if g := p.gatewayHdr(&gws, d); g != nil && p.nOut == 0 {
				n = p.fwdTx(pks[k:], dec[k:], d, mtu, g)
			} else {
				n = p.fwdOut(pks[k:], dec[k:], d, mtu)
			}
			p.ctr.local[Forwarded] += uint64(n)
			if k += n; k == len(pks) {
				break
			}
			if dec[k] != d {
				continue
			}
		}
		p.dispatchOne(&pks[k], d)
		k++
	}
}

// fwdTx forwards the packets of a run with forward decision d, whose
// gateway's Ethernet header is g, straight onto the port's tx list. It
// returns how many it took: it stops at the first with another decision,
// one the usual checks leave to forward, or a full list.
func (p *Pipeline) fwdTx(pks []RxPkt, dec []*cache.Decision, d *cache.Decision, mtu int, g *gwHdr) int {
	port := int(g.port)
	refs := p.io.TxRef[port]
	lens := p.io.TxLen[port][:len(refs)]
	n := int(p.io.TxN[port])
	hdr, in := g.hdr, uint16(d.Port)
	dec = dec[:len(pks)]
	k := 0
	for ; k < len(pks); k++ {
		pk := &pks[k]
		h := (*frameHdr)(pk.Data)
		if dec[k] != d || h[0]&1 != 0 || h[EthHdrLen+ipTTL] <= 1 || int(pk.Len)-EthHdrLen > mtu || pk.Port == in || n >= len(refs) {
			break
		}
		decTTL(h[EthHdrLen:])
		*(*[EthHdrLen]byte)(pk.Data) = hdr
		refs[n], lens[n] = pk.Ref, pk.Len
		n++
	}
	p.io.TxN[port] = uint16(n)
	return k
}

// fwdOut is fwdTx onto the neighbour stage's list, for a gateway not yet
// usable or destinations on the link.
func (p *Pipeline) fwdOut(pks []RxPkt, dec []*cache.Decision, d *cache.Decision, mtu int) int {
	out := p.out[:]
	nOut := p.nOut
	in, gw := uint16(d.Port), d.Gateway
	dec = dec[:len(pks)]
	k := 0
	for ; k < len(pks); k++ {
		pk := &pks[k]
		h := (*frameHdr)(pk.Data)
		if dec[k] != d || h[0]&1 != 0 || h[EthHdrLen+ipTTL] <= 1 || int(pk.Len)-EthHdrLen > mtu || pk.Port == in || nOut >= len(out) {
			break
		}
		decTTL(h[EthHdrLen:])
		nh := gw
		if nh == 0 {
			nh = pk.Dst
		}
		o := &out[nOut]
		o.ref, o.data, o.nh, o.len, o.cap, o.port = pk.Ref, pk.Data, nh, pk.Len, pk.Cap, in
		nOut++
	}
	p.nOut = nOut
	return k
}

// dispatchOne sends a packet the runs did not take on its way.
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
	g.hdr = ipv4EthHdr(MAC(mac), p.ports[port].MAC)
	g.ok = true
	return g
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
