// Package pipeline is the per-core packet path: each stage works on a whole
// burst of packets seen as byte views over buffers the data plane hands in.
package pipeline

import "encoding/binary"

// Fixed offsets of the headers the router reads and writes in place.
const (
	EthHdrLen  = 14
	EthTypeOff = 12
	EtherIPv4  = 0x0800
	EtherARP   = 0x0806

	ArpLen    = 28 // Ethernet/IPv4 ARP body
	ArpOpOff  = 6
	ArpShaOff = 8
	ArpSpaOff = 14
	ArpThaOff = 18
	ArpTpaOff = 24

	IPv4MinHdr   = 20
	ipVerIHL     = 0
	ipTOS        = 1
	ipTotLen     = 2
	ipID         = 4
	ipFragOff    = 6
	ipTTL        = 8
	ipProto      = 9
	ipCsum       = 10
	ipSrc        = 12
	ipDst        = 16
	ipFlagDF     = 0x4000
	ipFlagMF     = 0x2000
	ipOffsetMask = 0x1fff

	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoSCTP = 132

	ICMPHdrLen = 8
)

// ICMP types and codes the router sends or answers.
const (
	ICMPEchoReply     = 0
	ICMPDestUnreach   = 3
	ICMPRedirect      = 5
	ICMPEcho          = 8
	ICMPTimeExceeded  = 11
	CodeNetUnreach    = 0
	CodeHostUnreach   = 1
	CodeProtoUnreach  = 2
	CodePortUnreach   = 3
	CodeFragNeeded    = 4
	CodePktFiltered   = 13
	CodeTTLExceeded   = 0
	CodeRedirectHost  = 1
	icmpPrecInternet  = 0xc0
	defaultTTL        = 64
	icmpErrorMaxBytes = 576
)

var be = binary.BigEndian

// checksum is the Internet checksum (RFC 1071) of b, folded and inverted.
func checksum(b []byte, initial uint32) uint16 {
	sum := initial
	for len(b) >= 8 {
		sum += uint32(be.Uint16(b[0:])) + uint32(be.Uint16(b[2:])) +
			uint32(be.Uint16(b[4:])) + uint32(be.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint32(be.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Checksum is the Internet checksum of b: over a header whose checksum
// field is zero, the value that goes there; over a header with its
// checksum, zero when it checks out.
func Checksum(b []byte) uint16 { return checksum(b, 0) }

// ipv4HeaderOK checks the header checksum of a header of hlen bytes.
func ipv4HeaderOK(ip []byte, hlen int) bool {
	if hlen == IPv4MinHdr {
		return ipv4Sum20((*[IPv4MinHdr]byte)(ip))
	}
	return checksum(ip[:hlen], 0) == 0
}

// setIPv4Checksum recomputes the header checksum in place.
func setIPv4Checksum(ip []byte, hlen int) {
	ip[ipCsum], ip[ipCsum+1] = 0, 0
	be.PutUint16(ip[ipCsum:], checksum(ip[:hlen], 0))
}

// decTTL lowers the TTL by one and patches the checksum incrementally
// (RFC 1624): the TTL is the high byte of its 16-bit word, so the
// checksum's high byte goes up by one, and that is the low byte of the
// checksum loaded little-endian; the ones' complement sum does not depend
// on byte order, so the carries come round the same way.
func decTTL(ip []byte) {
	sum := uint32(le.Uint16(ip[ipCsum:])) + 1
	sum += sum >> 16
	le.PutUint16(ip[ipCsum:], uint16(sum))
	ip[ipTTL]--
}

func isMulticastOrBroadcastIP(a uint32) bool {
	return a>>28 == 0xe || a == 0xffffffff
}

func isZeronetOrLoopback(a uint32) bool {
	return a>>24 == 0 || a>>24 == 127
}
