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

// ipv4Sum20 checks the checksum of an option-less header. Its 16-bit
// words must sum, ones' complement, to 0xffff: their plain sum is then a
// non-zero multiple of 0xffff (a header with a version is never all
// zeros), and so is the plain sum of its five 32-bit words, as 2^16 is 1
// modulo 0xffff, in either byte order. The compiler tests that with one
// multiplication.
func ipv4Sum20(h *[IPv4MinHdr]byte) bool {
	s := uint64(le.Uint32(h[0:])) + uint64(le.Uint32(h[4:])) + uint64(le.Uint32(h[8:])) +
		uint64(le.Uint32(h[12:])) + uint64(le.Uint32(h[16:]))
	return s%0xffff == 0 && s != 0
}
