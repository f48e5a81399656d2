package pipeline

// ipv4Check validates an IPv4 header as ip_rcv does (ip: the packet from
// its header to the frame's end, at least IPv4MinHdr bytes) and returns
// the packet's total length, or the counter of the reason to drop it.
// ethInput checks the usual option-less header inline and, through
// ethNotPlainIPv4, calls this for the rest.
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

// ipv4Sum20 checks the checksum of an option-less header.
func ipv4Sum20(h *[IPv4MinHdr]byte) bool {
	w0, w1, w2, w3, w4 := le.Uint32(h[0:]), le.Uint32(h[4:]), le.Uint32(h[8:]), le.Uint32(h[12:]), le.Uint32(h[16:])
	return w0|w1|w2|w3|w4 != 0 && ipv4Words(w0, w1, w2, w3, w4)
}

// ipv4Words checks the checksum of an option-less header that is not all
// zeros (a version byte makes sure), given as its five 32-bit words loaded
// in either byte order. Its 16-bit words must sum, ones' complement, to
// 0xffff: their plain sum, then not zero, is a multiple of 0xffff, and so
// is the plain sum of the 32-bit words, as 2^16 is 1 modulo 0xffff. The
// compiler tests that with one multiplication.
func ipv4Words(w0, w1, w2, w3, w4 uint32) bool {
	return (uint64(w0)+uint64(w1)+uint64(w2)+uint64(w3)+uint64(w4))%0xffff == 0
}
