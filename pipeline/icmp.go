package pipeline

import (
	"unsafe"

	"ferry/cache"
)

// icmpError turns the offending packet into an ICMP error about it, in the
// same buffer, and routes it back to its source. It follows icmp_send's
// rules: never about ICMP errors, non-first fragments, broadcasts or bogus
// sources; rate limited per core.
func (p *Pipeline) icmpError(ref unsafe.Pointer, buf []byte, l int, typ, code uint8, info uint32) {
	ip := buf[EthHdrLen:l]
	hlen := int(ip[ipVerIHL]&0xf) * 4
	src := be.Uint32(ip[ipSrc:])
	dst := be.Uint32(ip[ipDst:])
	if buf[0]&1 != 0 || isMulticastOrBroadcastIP(dst) || isMulticastOrBroadcastIP(src) || isZeronetOrLoopback(src) ||
		be.Uint16(ip[ipFragOff:])&ipOffsetMask != 0 {
		p.io.free(ref)
		return
	}
	if ip[ipProto] == ProtoICMP && len(ip) >= hlen+1 {
		switch ip[hlen] {
		case ICMPEcho, ICMPEchoReply, 13, 14: // queries may get errors
		default:
			p.io.free(ref)
			return
		}
	}
	if !p.icmpTok.take() {
		p.drop(ref, DropICMPRateLimited)
		return
	}
	d := p.outputDecision(src, 0)
	if d.Kind != cache.Forward {
		p.io.free(ref)
		return
	}
	// Quote as much of the original as fits in 576 bytes (RFC 1812 4.3.2.3).
	var quote [icmpErrorMaxBytes - IPv4MinHdr - ICMPHdrLen]byte
	q := copy(quote[:], ip)
	tot := IPv4MinHdr + ICMPHdrLen + q
	if EthHdrLen+tot > len(buf) {
		p.drop(ref, DropNoBuffer)
		return
	}
	tos := ip[ipTOS]&0x1e | icmpPrecInternet
	out := buf[EthHdrLen : EthHdrLen+tot]
	icmp := out[IPv4MinHdr:]
	copy(icmp[ICMPHdrLen:], quote[:q])
	icmp[0], icmp[1], icmp[2], icmp[3] = typ, code, 0, 0
	be.PutUint32(icmp[4:], info)
	be.PutUint16(icmp[2:], checksum(icmp, 0))
	p.writeIPHeader(out, tos, ProtoICMP, d.Src, src, tot)
	p.ctr.local[ICMPErrorsSent]++
	p.queueOut(ref, buf, EthHdrLen+tot, d, d.NextHop(src))
}
