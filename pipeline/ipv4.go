package pipeline

// ipv4Check validates an IPv4 header as ip_rcv does (ip: the packet from
// its header to the frame's end, at least IPv4MinHdr bytes) and returns
// the packet's total length, or the counter of the reason to drop it.
// ethInput checks the usual option-less header inline and calls this for
// the rest.
func ipv4Check(ip []byte) (tot int, why Counter) {
	if ip[ipVerIHL]>>4 != 4 {
		return 0, DropIPVersion
	}
	hlen := int(ip[ipVerIHL]&0xf) * 4
	if hlen < IPv4MinHdr || hlen > len(ip) {
		return 0, DropIPHeaderLen
	}
	tot = int(be.Uint16(ip[ipTotLen:]))
	if tot < hlen || tot > len(ip) {
		return 0, DropIPTotalLen
	}
	if !ipv4HeaderOK(ip, hlen) {
		return 0, DropIPChecksum
	}
	return tot, 0
}

// ipv4Sum20 checks the checksum of an option-less header. The ones'
// complement sum does not depend on byte order, so the words are summed
// as the CPU loads them.
func ipv4Sum20(h *[IPv4MinHdr]byte) bool {
	s := uint64(le.Uint32(h[0:])) + uint64(le.Uint32(h[4:])) + uint64(le.Uint32(h[8:])) +
		uint64(le.Uint32(h[12:])) + uint64(le.Uint32(h[16:]))
	s = s&0xffffffff + s>>32
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return s == 0xffff
}
