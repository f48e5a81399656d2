package pipeline

import (
	"unsafe"

	"ferry/cache"
)

// fragment splits a packet too big for the egress MTU (DF clear) into
// fragments as RFC 791 says: each carries the header, the first all its
// options, later ones only the options whose copy flag is set; offsets are
// in 8-byte units and every fragment but the last has MF set.
func (p *Pipeline) fragment(ref unsafe.Pointer, buf []byte, l int, d *cache.Decision, mtu int) {
	ip := buf[EthHdrLen:l]
	hlen := int(ip[ipVerIHL]&0xf) * 4
	if mtu < hlen+8 {
		p.drop(ref, DropFragNeeded)
		return
	}
	var opts [40]byte
	on := copiedOptions(ip[IPv4MinHdr:hlen], opts[:])
	laterHlen := IPv4MinHdr + (on+3)&^3
	fo := be.Uint16(ip[ipFragOff:])
	baseOff := int(fo&ipOffsetMask) * 8
	moreAfter := fo&ipFlagMF != 0
	payload := ip[hlen:]
	dst := be.Uint32(ip[ipDst:])
	nh := d.NextHop(dst)

	firstLen := (mtu - hlen) &^ 7
	// The original buffer becomes the first fragment (only its header
	// changes); later ones are copied from the payload behind it.
	be.PutUint16(ip[ipFragOff:], fo&^ipOffsetMask|ipFlagMF|uint16(baseOff/8))
	be.PutUint16(ip[ipTotLen:], uint16(hlen+firstLen))
	setIPv4Checksum(ip, hlen)
	p.ctr.local[Fragmented]++
	p.ctr.local[FragmentsCreated]++
	hdr := ip[:IPv4MinHdr]
	firstRef, firstFrame := ref, EthHdrLen+hlen+firstLen
	p.queueOut(firstRef, buf, firstFrame, d, nh)
	for off := firstLen; off < len(payload); {
		n := (mtu - laterHlen) &^ 7
		last := off+n >= len(payload)
		if last {
			n = len(payload) - off
		}
		fref, fb, ok := p.io.alloc()
		if !ok || EthHdrLen+laterHlen+n > len(fb) {
			if ok {
				p.io.free(fref)
			}
			p.ctr.local[DropNoBuffer]++
			return // the fragments sent so far are useless but harmless
		}
		f := fb[EthHdrLen : EthHdrLen+laterHlen+n]
		copy(f, hdr)
		copy(f[IPv4MinHdr:laterHlen], opts[:laterHlen-IPv4MinHdr])
		f[ipVerIHL] = 0x40 | byte(laterHlen/4)
		copy(f[laterHlen:], payload[off:off+n])
		flags := fo & ipFlagDF
		if !last || moreAfter {
			flags |= ipFlagMF
		}
		be.PutUint16(f[ipFragOff:], flags|uint16((baseOff+off)/8))
		be.PutUint16(f[ipTotLen:], uint16(len(f)))
		setIPv4Checksum(f, laterHlen)
		p.ctr.local[FragmentsCreated]++
		p.queueOut(fref, fb, EthHdrLen+len(f), d, nh)
		off += n
	}
}

// copiedOptions copies the options whose copy flag (bit 7 of the type) is
// set, as every fragment after the first must carry them; it returns their
// length before padding.
func copiedOptions(opts []byte, out []byte) int {
	n := 0
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 { // end of list
			break
		}
		if t == 1 { // no-op
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			break
		}
		ol := int(opts[i+1])
		if t&0x80 != 0 {
			n += copy(out[n:], opts[i:i+ol])
		}
		i += ol
	}
	for j := n; j < len(out) && j < (n+3)&^3; j++ {
		out[j] = 0 // pad with end-of-list
	}
	return n
}
