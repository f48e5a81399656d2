package pipeline

import (
	"encoding/binary"
	"unsafe"
)

// rcvPkt is a valid IPv4 packet of the burst: its buffer and the header
// fields routing reads, taken once while the header is being checked.
type rcvPkt struct {
	ref  unsafe.Pointer
	data unsafe.Pointer // the frame's first byte
	dst  uint32
	src  uint32
	len  uint16 // frame length, Ethernet padding trimmed
	cap  uint16 // buffer room from data
	port uint16 // input port
	tos  uint8
}

// frameHdr is the fixed-offset view of an Ethernet frame carrying an
// option-less IPv4 header.
type frameHdr = [EthHdrLen + IPv4MinHdr]byte

var le = binary.LittleEndian

// ethInput classifies each received frame by EtherType and validates IPv4
// packets as ip_rcv does, in one pass: ARP is handled at once, valid IPv4
// packets join the list for routing, anything else is dropped and counted.
func (p *Pipeline) ethInput(n int) {
	io := p.io
	ports := p.ports
	refs, datas, lens, caps, inPorts := io.RxRef[:n], io.RxData[:n], io.RxLen[:n], io.RxCap[:n], io.RxPort[:n]
	kept := 0
	for i := range refs {
		ref := refs[i]
		l := int(lens[i])
		port := int(inPorts[i])
		if l < EthHdrLen || port >= len(ports) {
			if l < EthHdrLen {
				p.drop(ref, DropShort)
			} else {
				p.drop(ref, DropNotForUs)
			}
			continue
		}
		data := datas[i]
		if l < EthHdrLen+IPv4MinHdr {
			p.ethShort(i, data, l, port)
			continue
		}
		h := (*frameHdr)(data)
		// Unicast frames for another station reach us only in promiscuous
		// set-ups; a router must not act on them.
		if h[0]&1 == 0 && MAC(h[0:6]) != ports[port].MAC {
			p.drop(ref, DropNotForUs)
			continue
		}
		if et := be.Uint16(h[EthTypeOff:]); et != EtherIPv4 {
			if et == EtherARP {
				p.arpInput(i, bytesAt(data, int(caps[i]))[:l], port)
			} else {
				p.drop(ref, DropEtherType)
			}
			continue
		}
		var tot int
		if h[EthHdrLen+ipVerIHL] == 0x45 && ipv4Sum20((*[IPv4MinHdr]byte)(h[EthHdrLen:])) {
			tot = int(be.Uint16(h[EthHdrLen+ipTotLen:]))
			if tot < IPv4MinHdr || tot > l-EthHdrLen {
				p.drop(ref, DropIPTotalLen)
				continue
			}
		} else {
			var why Counter
			if tot, why = ipv4Check(bytesAt(data, l)[EthHdrLen:]); why != 0 {
				p.drop(ref, why)
				continue
			}
		}
		src := be.Uint32(h[EthHdrLen+ipSrc:])
		if isMulticastOrBroadcastIP(src) || isZeronetOrLoopback(src) {
			p.drop(ref, DropMartianSrc)
			continue
		}
		dst := be.Uint32(h[EthHdrLen+ipDst:])
		if isZeronetOrLoopback(dst) {
			p.drop(ref, DropMartianDst)
			continue
		}
		pk := &p.pk[kept]
		pk.ref, pk.data, pk.dst, pk.src = ref, data, dst, src
		// Ethernet padding is not ours to forward.
		pk.len, pk.cap, pk.port, pk.tos = uint16(EthHdrLen+tot), caps[i], uint16(port), h[EthHdrLen+ipTOS]
		kept++
	}
	p.nIP = kept
}

// ethShort handles a frame too short to hold an IPv4 header: an ARP frame
// (which arpInput judges) or a drop.
func (p *Pipeline) ethShort(i int, data unsafe.Pointer, l, port int) {
	io := p.io
	buf := bytesAt(data, int(io.RxCap[i]))
	ref := io.RxRef[i]
	if buf[0]&1 == 0 && MAC(buf[0:6]) != p.ports[port].MAC {
		p.drop(ref, DropNotForUs)
		return
	}
	switch be.Uint16(buf[EthTypeOff:]) {
	case EtherIPv4:
		p.drop(ref, DropShort)
	case EtherARP:
		p.arpInput(i, buf[:l], port)
	default:
		p.drop(ref, DropEtherType)
	}
}
