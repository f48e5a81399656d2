package pipeline

// ethInput classifies each received frame by EtherType: ARP is handled at
// once, IPv4 goes on to validation as a list, anything else is dropped.
func (p *Pipeline) ethInput(n int) {
	io := p.io
	for i := 0; i < n; i++ {
		l := int(io.RxLen[i])
		ref := io.RxRef[i]
		if l < EthHdrLen {
			p.drop(ref, DropShort)
			continue
		}
		port := int(io.RxPort[i])
		if port >= len(p.ports) {
			p.drop(ref, DropNotForUs)
			continue
		}
		buf := bytesAt(io.RxData[i], int(io.RxCap[i]))
		// Unicast frames for another station reach us only in promiscuous
		// set-ups; a router must not act on them.
		if buf[0]&1 == 0 && MAC(buf[0:6]) != p.ports[port].MAC {
			p.drop(ref, DropNotForUs)
			continue
		}
		switch be.Uint16(buf[EthTypeOff:]) {
		case EtherIPv4:
			p.ipList[p.nIP] = uint16(i)
			p.nIP++
		case EtherARP:
			p.arpInput(i, buf[:l], port)
		default:
			p.drop(ref, DropEtherType)
		}
	}
}
