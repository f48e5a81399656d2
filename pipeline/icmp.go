package pipeline

import (
	"unsafe"

	"ferry/cache"
)

// icmpErrorAllowed applies icmp_send's rules: never about ICMP errors,
// non-first fragments, link or IP broadcasts, or bogus sources.
func icmpErrorAllowed(buf []byte, ip []byte) bool {
	hlen := int(ip[ipVerIHL]&0xf) * 4
	src := be.Uint32(ip[ipSrc:])
	dst := be.Uint32(ip[ipDst:])
	if buf[0]&1 != 0 || isMulticastOrBroadcastIP(dst) || isMulticastOrBroadcastIP(src) || isZeronetOrLoopback(src) ||
		be.Uint16(ip[ipFragOff:])&ipOffsetMask != 0 {
		return false
	}
	if ip[ipProto] == ProtoICMP && len(ip) > hlen {
		switch ip[hlen] {
		case ICMPEcho, ICMPEchoReply, 13, 14: // queries may get errors
		default:
			return false
		}
	}
	return true
}

// icmpError turns the offending packet into an ICMP error about it, in the
// same buffer, and routes it back to its source. Rate limited per core.
func (p *Pipeline) icmpError(ref unsafe.Pointer, buf []byte, l int, typ, code uint8, info uint32) {
	ip := buf[EthHdrLen:l]
	if !icmpErrorAllowed(buf, ip) {
		p.io.free(ref)
		return
	}
	if !p.icmpTok.take() {
		p.drop(ref, DropICMPRateLimited)
		return
	}
	n, d := p.buildICMPError(buf, ip, typ, code, info)
	if n == 0 {
		p.io.free(ref)
		return
	}
	p.ctr.local[ICMPErrorsSent]++
	p.queueOut(ref, buf, n, d, d.NextHop(be.Uint32(buf[EthHdrLen+ipDst:])))
}

// icmpErrorCopy sends an ICMP error about a packet that itself goes on (a
// redirect): the error is built in a fresh buffer.
func (p *Pipeline) icmpErrorCopy(buf []byte, l int, typ, code uint8, info uint32) bool {
	ip := buf[EthHdrLen:l]
	if !icmpErrorAllowed(buf, ip) || !p.icmpTok.take() {
		return false
	}
	ref, nb, ok := p.io.alloc()
	if !ok {
		p.ctr.local[DropNoBuffer]++
		return false
	}
	n, d := p.buildICMPError(nb, ip, typ, code, info)
	if n == 0 {
		p.io.free(ref)
		return false
	}
	p.ctr.local[ICMPErrorsSent]++
	p.queueOut(ref, nb, n, d, d.NextHop(be.Uint32(nb[EthHdrLen+ipDst:])))
	return true
}

// buildICMPError writes into out (which may hold ip itself) an IPv4 ICMP
// error quoting as much of ip as fits in 576 bytes (RFC 1812 4.3.2.3), and
// returns the frame length and the decision that routes it; 0 when the
// source cannot be reached.
func (p *Pipeline) buildICMPError(out []byte, ip []byte, typ, code uint8, info uint32) (int, *cache.Decision) {
	src := be.Uint32(ip[ipSrc:])
	d := p.outputDecision(src, 0)
	if d.Kind != cache.Forward {
		return 0, nil
	}
	var quote [icmpErrorMaxBytes - IPv4MinHdr - ICMPHdrLen]byte
	q := copy(quote[:], ip)
	tot := IPv4MinHdr + ICMPHdrLen + q
	if EthHdrLen+tot > len(out) {
		return 0, nil
	}
	tos := ip[ipTOS]&0x1e | icmpPrecInternet
	o := out[EthHdrLen : EthHdrLen+tot]
	icmp := o[IPv4MinHdr:]
	copy(icmp[ICMPHdrLen:], quote[:q])
	icmp[0], icmp[1], icmp[2], icmp[3] = typ, code, 0, 0
	be.PutUint32(icmp[4:], info)
	be.PutUint16(icmp[2:], checksum(icmp, 0))
	p.writeIPHeader(o, tos, ProtoICMP, d.Src, src, tot)
	return EthHdrLen + tot, d
}
