package pipeline

import (
	"unsafe"

	"ferry/cache"
)

// localDeliver handles packets addressed to the router: it answers ICMP
// echo itself and hands everything else to the port's kernel interface
// where there is one (the kernel reassembles, and its sockets answer);
// without one it tells senders that nobody listens.
func (p *Pipeline) localDeliver(ref unsafe.Pointer, buf []byte, l int, d *cache.Decision, port int) {
	p.ctr.local[LocalDelivered]++
	ip := buf[EthHdrLen:l]
	hlen := int(ip[ipVerIHL]&0xf) * 4
	if be.Uint16(ip[ipFragOff:])&(ipFlagMF|ipOffsetMask) != 0 {
		if p.puntLocal(ref, buf, l, port) {
			return
		}
		// No reassembly for the router's own traffic.
		p.drop(ref, DropFragment)
		return
	}
	if d.Kind == cache.Broadcast {
		// icmp_echo_ignore_broadcasts: the data plane answers none; the
		// kernel's sockets may want them (DHCP, RIP, OSPF hellos).
		if p.puntLocal(ref, buf, l, port) {
			return
		}
		p.drop(ref, DropNoLocalHandler)
		return
	}
	proto := ip[ipProto]
	if proto == ProtoICMP && len(ip) >= hlen+ICMPHdrLen && ip[hlen] == ICMPEcho {
		p.echoReply(ref, buf, l, hlen)
		return
	}
	if proto == ProtoICMP && p.icmpInput(ip, hlen, port) && !p.punts(port) {
		// Learnt from (redirect, PMTU); the kernel's sockets hear of it
		// too where there is a kernel path.
		p.io.free(ref)
		return
	}
	if p.puntLocal(ref, buf, l, port) {
		return
	}
	switch proto {
	case ProtoICMP, ProtoTCP:
		p.drop(ref, DropNoLocalHandler)
	case ProtoUDP:
		p.ctr.local[DropNoLocalHandler]++
		p.icmpError(ref, buf, l, ICMPDestUnreach, CodePortUnreach, 0)
	default:
		p.ctr.local[DropNoLocalHandler]++
		p.icmpError(ref, buf, l, ICMPDestUnreach, CodeProtoUnreach, 0)
	}
}

// echoReply turns an echo request into its reply in place and routes it back.
func (p *Pipeline) echoReply(ref unsafe.Pointer, buf []byte, l int, hlen int) {
	ip := buf[EthHdrLen:l]
	if csum := checksum(ip[hlen:], 0); csum != 0 {
		p.drop(ref, DropNoLocalHandler)
		return
	}
	src := be.Uint32(ip[ipSrc:])
	dst := be.Uint32(ip[ipDst:])
	if hlen > IPv4MinHdr {
		// Options are not echoed: close the gap so the reply has a plain header.
		copy(ip[IPv4MinHdr:], ip[hlen:])
		l -= hlen - IPv4MinHdr
		ip = buf[EthHdrLen:l]
		hlen = IPv4MinHdr
	}
	icmp := ip[hlen:]
	icmp[0] = ICMPEchoReply
	icmp[2], icmp[3] = 0, 0
	be.PutUint16(icmp[2:], checksum(icmp, 0))
	d := p.outputDecision(src, dst)
	if d.Kind != cache.Forward {
		p.drop(ref, DropNoRoute)
		return
	}
	p.writeIPHeader(ip, ip[ipTOS], ProtoICMP, dst, src, len(ip))
	p.ctr.local[ICMPEchoReplied]++
	p.queueOut(ref, buf, l, d, d.NextHop(src))
}

// writeIPHeader fills a 20-byte header for a packet the router originates.
func (p *Pipeline) writeIPHeader(ip []byte, tos, proto uint8, src, dst uint32, tot int) {
	ip[ipVerIHL] = 0x45
	ip[ipTOS] = tos
	be.PutUint16(ip[ipTotLen:], uint16(tot))
	p.ipID++
	be.PutUint16(ip[ipID:], p.ipID)
	be.PutUint16(ip[ipFragOff:], 0)
	ip[ipTTL] = defaultTTL
	ip[ipProto] = proto
	be.PutUint32(ip[ipSrc:], src)
	be.PutUint32(ip[ipDst:], dst)
	setIPv4Checksum(ip, IPv4MinHdr)
}
