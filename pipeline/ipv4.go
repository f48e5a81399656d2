package pipeline

// ipRcv validates every IPv4 packet of the burst as ip_rcv does and keeps the
// good ones, trimmed to their total length, in the list for routing.
func (p *Pipeline) ipRcv() {
	io := p.io
	kept := 0
	for k := 0; k < p.nIP; k++ {
		i := int(p.ipList[k])
		ref := io.RxRef[i]
		l := int(io.RxLen[i])
		if l < EthHdrLen+IPv4MinHdr {
			p.drop(ref, DropShort)
			continue
		}
		ip := bytesAt(io.RxData[i], l)[EthHdrLen:]
		if ip[ipVerIHL]>>4 != 4 {
			p.drop(ref, DropIPVersion)
			continue
		}
		hlen := int(ip[ipVerIHL]&0xf) * 4
		if hlen < IPv4MinHdr || hlen > len(ip) {
			p.drop(ref, DropIPHeaderLen)
			continue
		}
		tot := int(be.Uint16(ip[ipTotLen:]))
		if tot < hlen || tot > len(ip) {
			p.drop(ref, DropIPTotalLen)
			continue
		}
		if !ipv4HeaderOK(ip, hlen) {
			p.drop(ref, DropIPChecksum)
			continue
		}
		src := be.Uint32(ip[ipSrc:])
		if isMulticastOrBroadcastIP(src) || isZeronetOrLoopback(src) {
			p.drop(ref, DropMartianSrc)
			continue
		}
		dst := be.Uint32(ip[ipDst:])
		if isZeronetOrLoopback(dst) {
			p.drop(ref, DropMartianDst)
			continue
		}
		io.RxLen[i] = uint16(EthHdrLen + tot) // Ethernet padding is not ours to forward
		p.ipList[kept] = uint16(i)
		kept++
	}
	p.nIP = kept
}
