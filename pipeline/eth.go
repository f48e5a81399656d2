package pipeline

import (
	"encoding/binary"

	"math/bits"
	"unsafe"

	"ferry/fib"
	"ferry/netaddr"
)

// RxPkt is a received packet as the data plane hands it in and the
// receive stage completes it, in place: the data plane fills the buffer's
// fields, and for a valid IPv4 packet the header fields routing reads are
// taken once while the header is checked (by ParseUsual, or by the data
// plane itself: IO.Parses). It is laid out as the shim's struct fy_rxpkt.
type RxPkt struct {
	Ref  unsafe.Pointer // opaque buffer handle
	Data unsafe.Pointer // the frame's first byte
	Dst  uint32         // host order
	Src  uint32
	Len  uint16 // frame length; once valid, Ethernet padding trimmed
	Cap  uint16 // buffer room from Data
	Port uint16 // input port
	TOS  uint8
	// Usual: the frame passed ParseUsual's checks and the header fields
	// above are filled; false sends it through every receive check.
	Usual bool
}

// frameHdr is the fixed-offset view of an Ethernet frame carrying an
// option-less IPv4 header.
type frameHdr = [EthHdrLen + IPv4MinHdr]byte

var le = binary.LittleEndian

// ipv4Start is a frame's bytes 12-14 (EtherType IPv4, version 4 and a
// 20-byte header), loaded little-endian: the usual packet's check.
const ipv4Start = 0x45<<16 | EtherIPv4>>8 | EtherIPv4&0xff<<8

// Addresses by first octet. Martians (ip_route_input_slow): as source
// 0/8, 127/8 and multicast (and the limited broadcast, checked apart); as
// destination 0/8 and 127/8. And what ParseUsual leaves to ethInputOne, as
// rare and not the usual packet: those, and sources and destinations from
// 224/4 up, so that no usual packet has fib.Special addresses.
const (
	martianSrc = 1 << iota
	martianDst
	unusualSrc
	unusualDst
)

var octetClass = func() (t [256]uint8) {
	for o := range t {
		switch {
		case o == 0 || o == 127:
			t[o] = martianSrc | martianDst | unusualSrc | unusualDst
		case o>>4 == 0xe:
			t[o] = martianSrc | unusualSrc | unusualDst
		case o >= 0xf0:
			t[o] = unusualSrc | unusualDst
		}
	}
	return t
}()

// ethInput classifies each received frame by EtherType and validates IPv4
// packets as ip_rcv does: ARP is handled at once, valid IPv4
// packets stay in the list for routing, anything else is dropped and
// counted. Each valid packet is also classified for routing (see
// routeInput): its destination joins the lookup list unless it is a
// broadcast or multicast one or the previous packet's decision can be
// reused.
//
// The usual frames (ParseUsual) go through rxRun, a loop that calls
// nothing: Go keeps no register across a call, so a call even on a cold
// path in the loop would have every value the loop carries stored and
// reloaded around it. rxRun stops at a frame it cannot take and
// ethInputOne takes that one. Frames that leave the list (handled or
// dropped) are closed up behind the pass by compactRx.
func (p *Pipeline) ethInput(n int) {
	rx := p.io.Rx[:n]
	if !p.io.Parses {
		macs := p.io.PortMAC
		for i := range rx {
			r := &rx[i]
			r.Usual = ParseUsual(r, macs[r.Port%MaxPorts], false)
		}
	}
	// One view of the FIB for the whole pass: with policy rules, the
	// lookups this stage lets packets share hold for the rules of the
	// view it chose them with.
	p.view = p.sh.FIB.InputView()
	st := rxState{prev: noHint, hints: !p.sh.FIB.HasCustomRules(), shared: noShare}
	var srcMay, dstMay *[256]uint64
	if !st.hints {
		srcMay, dstMay = p.view.KeyFilter()
	}
	for i := 0; ; i++ {
		if dstMay != nil {
			i = p.rxRunShared(rx, i, &st, srcMay, dstMay)
		} else {
			i = p.rxRun(rx, i, &st)
		}
		if i >= len(rx) {
			break
		}
		p.ethInputOne(rx, i, &st)
		st.shared = noShare
	}
	p.nIP, p.nk = n, st.nk
	if st.gone > 0 {
		p.compactRx(rx)
	}
}

// rxState is what the receive stage carries from frame to frame.
type rxState struct {
	nk   int    // lookups listed
	gone int    // frames that left the list
	prev uint64 // hintKey of the last packet looked up, or noHint
	// hints: route hints may be used (no policy rules)
	hints bool
	// shared is the destination of the last lookup rxRunShared listed,
	// leadSrc its packet's source; noShare after any other.
	shared, leadSrc uint32
}

// noShare is no listed destination: the limited broadcast is never
// listed.
const noShare = ^uint32(0)

// hintKey packs what a packet must share with the previous one to reuse
// its decision: destination, TOS and input port.
func hintKey(dst uint32, tos uint8, port uint16) uint64 {
	return uint64(dst)<<32 | uint64(tos)<<16 | uint64(port)
}

// noHint is no packet's hintKey: its destination would be the limited
// broadcast, which never comes to be compared.
const noHint = ^uint64(0)

// rxRun takes the usual frames from i on and returns the index of the
// first other one, or len(rx): each is a route hint or joins the lookup
// list.
func (p *Pipeline) rxRun(rx []RxPkt, i int, st *rxState) int {
	nports := min(len(p.ports), MaxPorts)
	route, dsts := p.route[:len(rx)], (*[RxMax]uint32)(p.dsts[:])
	nk, prev, hints := st.nk, st.prev, st.hints
	for ; i < len(rx); i++ {
		r := &rx[i]
		if !r.Usual || int(r.Port) >= nports {
			break
		}
		// Not a broadcast or multicast destination: the previous lookup's
		// decision (a hint) or a new lookup.
		nk, prev = hintOrList(&route[i], dsts, nk, prev, hints, r.Dst, hintKey(r.Dst, r.TOS, r.Port))
	}
	st.nk, st.prev = nk, prev
	return i
}

// rxRunShared is rxRun with policy rules, which allow no route hints (the
// kernel's ip_can_use_hint): each packet gets a decision of its own. But a
// packet that no rule with a selector can match (srcMay and dstMay, the
// view's KeyFilter, say so) has the value of its destination alone, so a
// run of such packets to one destination shares one lookup; ruleVals
// leaves their slot alone. Any other packet has a slot of its own.
func (p *Pipeline) rxRunShared(rx []RxPkt, i int, st *rxState, srcMay, dstMay *[256]uint64) int {
	nports := min(len(p.ports), MaxPorts)
	route, dsts := p.route[:len(rx)], (*[RxMax]uint32)(p.dsts[:])
	nk, shared, leadSrc := st.nk, st.shared, st.leadSrc
	for ; i < len(rx); i++ {
		r := &rx[i]
		if !r.Usual || int(r.Port) >= nports {
			break
		}
		// The filter only for a repeated destination: the packet's
		// and the one's that listed it.
		if r.Dst == shared && (srcMay[r.Src>>24]|srcMay[leadSrc>>24])&dstMay[r.Dst>>24] == 0 {
			route[i] = int16(nk - 1)
			continue
		}
		dsts[nk&(RxMax-1)], route[i] = r.Dst, int16(nk)
		nk++
		shared, leadSrc = r.Dst, r.Src
	}
	st.nk, st.shared, st.leadSrc = nk, shared, leadSrc
	return i
}

// ParseUsual runs the receive checks of the usual frame on r, which came
// in by a port whose MAC is mac (MACWord): unicast to that MAC or
// multicast, an option-less IPv4 header whose checksum and total length
// check out, ordinary addresses. sumGood says the device has checked the
// header checksum and found it right: the header is not summed again. If
// the checks pass it fills r's header fields, trims Ethernet padding from
// Len and returns true; any other frame (false) takes every check in
// ethInputOne, the sum among them. The data plane's shim runs the same
// checks in C as it receives (IO.Parses): this is their reference.
func ParseUsual(r *RxPkt, mac uint64, sumGood bool) bool {
	l := int(r.Len)
	if l < EthHdrLen+IPv4MinHdr {
		return false
	}
	h := (*frameHdr)(r.Data)
	// Unicast frames for another station reach us only in promiscuous
	// set-ups; a router must not act on them.
	if w := le.Uint64(h[0:8]); w&1 == 0 && w<<16 != mac<<16 {
		return false
	}
	if le.Uint32(h[EthTypeOff:])&0xffffff != ipv4Start {
		return false
	}
	// The header as five words (its first byte, 0x45, checked above),
	// checked and then taken apart: loading its fields apart had the
	// compiler share byte-wise loads between them and the checksum.
	ip := (*[IPv4MinHdr]byte)(h[EthHdrLen:])
	w0, w3, w4 := le.Uint32(ip[0:]), le.Uint32(ip[ipSrc:]), le.Uint32(ip[ipDst:])
	if !sumGood && !ipv4Words(w0, le.Uint32(ip[4:]), le.Uint32(ip[8:]), w3, w4) {
		return false
	}
	tot := int(bits.ReverseBytes16(uint16(w0 >> 16)))
	src, dst := bits.ReverseBytes32(w3), bits.ReverseBytes32(w4)
	if uint(tot-IPv4MinHdr) > uint(l-EthHdrLen-IPv4MinHdr) || octetClass[src>>24]&unusualSrc != 0 ||
		octetClass[dst>>24]&unusualDst != 0 {
		return false
	}
	// Ethernet padding is not ours to forward.
	r.Dst, r.Src, r.Len, r.TOS = dst, src, uint16(EthHdrLen+tot), uint8(w0>>8)
	return true
}

// ethInputOne is ethInput for frame i, which rxRun could not take: it
// handles or drops it, or keeps it as rxRun would (an IPv4 header with
// options).
func (p *Pipeline) ethInputOne(rx []RxPkt, i int, st *rxState) {
	r := &rx[i]
	if tot := p.ethCheck(r); tot > 0 {
		h := (*frameHdr)(r.Data)
		dst, tos := be.Uint32(h[EthHdrLen+ipDst:]), h[EthHdrLen+ipTOS]
		r.Dst, r.Src, r.Len, r.TOS = dst, be.Uint32(h[EthHdrLen+ipSrc:]), uint16(EthHdrLen+tot), tos
		st.nk, st.prev = classify(p.route[:len(rx)], (*[RxMax]uint32)(p.dsts[:]), i, st.nk, st.prev, st.hints, dst, r.Src, tos, r.Port)
		return
	}
	p.route[i] = routeGone
	st.gone++
}

// ethCheck runs every receive check on a frame: it returns the IPv4
// packet's total length, or 0 once the frame was handled (ARP) or dropped.
func (p *Pipeline) ethCheck(r *RxPkt) int {
	l, port := int(r.Len), int(r.Port)
	if l < EthHdrLen+IPv4MinHdr || port >= min(len(p.ports), MaxPorts) {
		p.ethShortOrNoPort(r, l, port, min(len(p.ports), MaxPorts))
		return 0
	}
	h := (*frameHdr)(r.Data)
	if h[0]&1 == 0 && netaddr.MAC(h[0:6]) != p.ports[port].MAC {
		p.drop(r.Ref, DropNotForUs)
		return 0
	}
	var tot int
	if le.Uint32(h[EthTypeOff:])&0xffffff == ipv4Start && ipv4Sum20((*[IPv4MinHdr]byte)(h[EthHdrLen:])) {
		tot = int(be.Uint16(h[EthHdrLen+ipTotLen:]))
		if tot < IPv4MinHdr || tot > l-EthHdrLen {
			p.drop(r.Ref, DropIPTotalLen)
			return 0
		}
	} else if tot = p.ethNotPlainIPv4(r, l, port); tot == 0 {
		return 0
	}
	src := be.Uint32(h[EthHdrLen+ipSrc:])
	if octetClass[src>>24]&martianSrc != 0 || src == 0xffffffff {
		p.drop(r.Ref, DropMartianSrc)
		return 0
	}
	if octetClass[h[EthHdrLen+ipDst]]&martianDst != 0 {
		p.drop(r.Ref, DropMartianDst)
		return 0
	}
	return tot
}

// compactRx moves the packets that stay in the list up over the frames
// that left it, with their routing classes.
func (p *Pipeline) compactRx(rx []RxPkt) {
	route := p.route[:len(rx)]
	k := 0
	for i := range rx {
		if route[i] == routeGone {
			continue
		}
		if k != i {
			rx[k], route[k] = rx[i], route[i]
		}
		k++
	}
	p.nIP = k
}

// classify says how packet k gets its decision (route[k]): broadcast,
// multicast, the previous lookup's decision again (a hint), a lookup of
// its own for special addresses, or a new lookup, added to dsts. It
// returns the new count of lookups and hint.
func classify(route []int16, dsts *[RxMax]uint32, k, nk int, prev uint64, hints bool, dst, src uint32, tos uint8, port uint16) (int, uint64) {
	switch key := hintKey(dst, tos, port); {
	case dst == 0xffffffff:
		route[k], prev = routeBcast, noHint
	case dst>>28 == 0xe:
		route[k], prev = routeMcast, noHint
	case key != prev && fib.Special(dst, src):
		route[k] = routeSpecial
		if hints {
			prev = key
		}
	default:
		nk, prev = hintOrList(&route[k], dsts, nk, prev, hints, dst, key)
	}
	return nk, prev
}

// hintOrList is the route hint decision (ip_list_rcv_finish's
// ip_can_use_hint): a packet whose hintKey is the previous looked-up
// packet's reuses its decision (routeHint); any other joins the lookup
// list, and becomes the one the next packets compare with while hints are
// allowed. It returns the new count of lookups and previous key. Small
// enough to be inlined into rxRun's loop, whose values stay in registers.
func hintOrList(route *int16, dsts *[RxMax]uint32, nk int, prev uint64, hints bool, dst uint32, key uint64) (int, uint64) {
	if key == prev {
		*route = routeHint
		return nk, prev
	}
	dsts[nk&(RxMax-1)], *route = dst, int16(nk)
	if hints {
		prev = key
	}
	return nk + 1, prev
}

// ethNotPlainIPv4 handles a frame that is not an option-less IPv4 packet
// with a good header checksum: ARP is handled, another EtherType dropped,
// and an IPv4 header with options (or a bad one) takes the full checks.
// It returns the IPv4 packet's total length, 0 when the frame was handled
// or dropped.
func (p *Pipeline) ethNotPlainIPv4(r *RxPkt, l, port int) int {
	h := (*frameHdr)(r.Data)
	if et := be.Uint16(h[EthTypeOff:]); et != EtherIPv4 {
		if et == EtherARP {
			p.arpInput(r.Ref, bytesAt(r.Data, int(r.Cap))[:l], port)
		} else {
			p.drop(r.Ref, DropEtherType)
		}
		return 0
	}
	tot, why := ipv4Check(bytesAt(r.Data, l)[EthHdrLen:])
	if why != 0 {
		p.drop(r.Ref, why)
		return 0
	}
	return tot
}

// ethShortOrNoPort handles a frame too short to hold an IPv4 header (an
// ARP frame, which arpInput judges, or a drop) or from a port the pipeline
// does not know.
func (p *Pipeline) ethShortOrNoPort(r *RxPkt, l, port, nports int) {
	switch {
	case l < EthHdrLen:
		p.drop(r.Ref, DropShort)
		return
	case port >= nports:
		p.drop(r.Ref, DropNotForUs)
		return
	}
	buf := bytesAt(r.Data, int(r.Cap))
	if buf[0]&1 == 0 && netaddr.MAC(buf[0:6]) != p.ports[port].MAC {
		p.drop(r.Ref, DropNotForUs)
		return
	}
	switch be.Uint16(buf[EthTypeOff:]) {
	case EtherIPv4:
		p.drop(r.Ref, DropShort)
	case EtherARP:
		p.arpInput(r.Ref, buf[:l], port)
	default:
		p.drop(r.Ref, DropEtherType)
	}
}

// MACWord is a MAC as the first six bytes of a frame load, little-endian.
func MACWord(m netaddr.MAC) uint64 {
	var b [8]byte
	copy(b[:], m[:])
	return le.Uint64(b[:])
}
