package pipeline

import (
	"unsafe"

	"ferry/cache"
	"ferry/cache/neigh"
)

// dispatch sends every routed packet on its way by the kind of its decision.
// The usual forwarded packet (TTL left, within the MTU, not back out of its
// input port) is handled inline; forward takes the rest.
func (p *Pipeline) dispatch() {
	pks := p.pk[:p.nIP]
	dec := p.dec[:len(pks)]
	out := p.out[:]
	nOut := p.nOut
	nOut0 := nOut
	// What the fast path needs of a decision, worked out when it changes.
	var fastD *cache.Decision
	fastMTU := 0
	var gws gwMemo
	var fastHdr *gwHdr
	tx := txCursor{port: -1}
	for k := range pks {
		pk := &pks[k]
		d := dec[k]
		if d != fastD {
			fastD, fastMTU, fastHdr = d, p.fastMTU(d), nil
			if fastMTU != 0 && d.Gateway != 0 {
				fastHdr = p.gatewayHdr(&gws, d)
			}
		}
		if fastMTU != 0 && nOut < len(out) {
			h := (*frameHdr)(pk.data)
			ipLen := int(pk.len) - EthHdrLen
			if h[0]&1 == 0 && h[EthHdrLen+ipTTL] > 1 && ipLen <= fastMTU && int(pk.port) != int(d.Port) {
				decTTL(h[EthHdrLen:])
				p.ctr.local[Forwarded]++
				// Straight to the port's tx list while no packet of the
				// burst waits in the neighbour stage's list, which would
				// send after it: a flow keeps its order.
				if fastHdr != nil && nOut == nOut0 {
					if int(fastHdr.port) != tx.port {
						tx.load(p.io, int(fastHdr.port))
					}
					if tx.n < len(tx.ref) {
						*(*[EthHdrLen]byte)(pk.data) = fastHdr.hdr
						tx.ref[tx.n], tx.len[tx.n] = pk.ref, pk.len
						tx.n++
					} else {
						p.drop(pk.ref, DropTxFull)
					}
					continue
				}
				o := &out[nOut]
				o.ref, o.data, o.nh, o.len, o.cap, o.port = pk.ref, pk.data, d.NextHop(pk.dst), pk.len, pk.cap, uint16(d.Port)
				nOut++
				continue
			}
		}
		p.nOut = nOut
		tx.store(p.io)
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
	tx.store(p.io)
}

// txCursor is one port's tx list held in locals while dispatch appends to
// it: stores into the list could alias the IO's fields, which the
// compiler would then load again for every packet.
type txCursor struct {
	port int // -1: none
	ref  []unsafe.Pointer
	len  []uint16
	n    int
}

func (t *txCursor) load(io *IO, port int) {
	t.store(io)
	t.port, t.ref, t.len, t.n = port, io.TxRef[port], io.TxLen[port], int(io.TxN[port])
	t.len = t.len[:len(t.ref)]
}

// store writes the count back, for whoever appends next.
func (t *txCursor) store(io *IO) {
	if t.port >= 0 {
		io.TxN[t.port] = uint16(t.n)
		t.port = -1
	}
}

// gwHdr is the Ethernet header for the gateway of a forward decision.
type gwHdr struct {
	d    *cache.Decision
	hdr  [EthHdrLen]byte
	port uint16
	ok   bool // the neighbour can be used now
}

// gwMemo is what a burst learned of its decisions' gateways.
type gwMemo struct {
	e [neighMemo]gwHdr
	n int
}

// gatewayHdr returns the header for d's gateway (d.Gateway set, d.Port a
// port) when its neighbour can be used now, looked up once a burst, as
// the neighbour stage does; nil leaves the packets to that stage, which
// also starts resolution and queues them.
func (p *Pipeline) gatewayHdr(m *gwMemo, d *cache.Decision) *gwHdr {
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
