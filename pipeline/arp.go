package pipeline

import (
	"unsafe"

	"ferry/cache/neigh"
	"ferry/fib"
	"ferry/netaddr"
)

// arpInput handles one ARP frame: it tells the neighbour owner what it
// learned and answers requests for our addresses in place.
func (p *Pipeline) arpInput(ref unsafe.Pointer, fr []byte, port int) {
	p.ctr.local[ARPIn]++
	if len(fr) < EthHdrLen+ArpLen {
		p.drop(ref, DropARPBad)
		return
	}
	a := fr[EthHdrLen : EthHdrLen+ArpLen]
	if be.Uint16(a[0:]) != 1 || be.Uint16(a[2:]) != EtherIPv4 || a[4] != 6 || a[5] != 4 {
		p.drop(ref, DropARPBad)
		return
	}
	op := be.Uint16(a[ArpOpOff:])
	sip := be.Uint32(a[ArpSpaOff:])
	tip := be.Uint32(a[ArpTpaOff:])
	var sha netaddr.MAC
	copy(sha[:], a[ArpShaOff:ArpShaOff+6])
	if (op != 1 && op != 2) || isMulticastOrBroadcastIP(tip) || sip>>24 == 127 || isMulticastOrBroadcastIP(sip) || sha[0]&1 != 0 {
		p.drop(ref, DropARPBad)
		return
	}
	pi := &p.ports[port]
	if pi.NoARP {
		p.drop(ref, DropNotForUs)
		return
	}
	// A duplicate-address probe (sender 0.0.0.0) is answered but teaches
	// nothing. The owner is told what the frame was: a reply broadcast,
	// not sent to the router, only makes an entry STALE (arp_process).
	if sip != 0 && p.sh.Neigh != nil {
		var tha netaddr.MAC
		copy(tha[:], a[ArpThaOff:ArpThaOff+6])
		p.sh.Neigh.ARPInput(p.core, port, neigh.ARPPacket{Op: op, SenderIP: sip, SenderMAC: sha, TargetIP: tip,
			TargetMAC: tha, HasTarget: true, Unicast: fr[0]&1 == 0})
	}
	if op != 1 || !(p.sh.FIB.IsLocal(tip) || pi.ProxyARP && p.proxies(tip, sip, port)) {
		if op == 2 && p.punts(port) {
			// The kernel resolves its own neighbours (its BGP peers,
			// say): it hears the replies too. Requests it never sees:
			// the data plane answers them.
			p.puntFrame(port, fr)
		}
		p.io.free(ref)
		return
	}
	// Turn the request into the reply in place.
	be.PutUint16(a[ArpOpOff:], 2)
	copy(a[ArpThaOff:ArpThaOff+6], sha[:])
	be.PutUint32(a[ArpTpaOff:], sip)
	copy(a[ArpShaOff:ArpShaOff+6], pi.MAC[:])
	be.PutUint32(a[ArpSpaOff:], tip)
	copy(fr[0:6], sha[:])
	copy(fr[6:12], pi.MAC[:])
	if !p.io.send(port, ref, EthHdrLen+ArpLen) {
		p.drop(ref, DropTxFull)
		return
	}
	p.ctr.local[ARPReplied]++
}

// BuildARP writes an ARP frame (request op 1, reply op 2) into b and returns
// its length. dst is the Ethernet destination; tha the target hardware
// address in the body (zero for requests).
func BuildARP(b []byte, op uint16, dst, src netaddr.MAC, sip, tip uint32, tha netaddr.MAC) int {
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	be.PutUint16(b[EthTypeOff:], EtherARP)
	a := b[EthHdrLen : EthHdrLen+ArpLen]
	be.PutUint16(a[0:], 1)
	be.PutUint16(a[2:], EtherIPv4)
	a[4], a[5] = 6, 4
	be.PutUint16(a[ArpOpOff:], op)
	copy(a[ArpShaOff:], src[:])
	be.PutUint32(a[ArpSpaOff:], sip)
	copy(a[ArpThaOff:], tha[:])
	be.PutUint32(a[ArpTpaOff:], tip)
	return EthHdrLen + ArpLen
}

// proxies is arp_fwd_proxy: with proxy_arp on, the router answers for an
// address it routes (unicast) out of a port other than the asking one.
// Unlike the kernel it answers at once instead of after proxy_delay.
func (p *Pipeline) proxies(tip, sip uint32, port int) bool {
	p.key = fib.Key{Dst: tip, Src: sip, Iif: port, Oif: -1, Hash: fib.FlowHash(sip, tip)}
	p.sh.FIB.Lookup(&p.key, &p.res)
	return p.res.Err == nil && p.res.Type == fib.Unicast && p.res.Nexthop != nil && p.res.Nexthop.Port != port
}
