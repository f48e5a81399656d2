package pipeline

import (
	"unsafe"

	"ferry/cache/neigh"
	"ferry/netaddr"
)

const (
	neighMemo     = 8 // neighbours remembered within a burst
	pendingQueues = 16
	// pendingDepth packets wait per next hop and core: a few milliseconds
	// of a busy gateway's traffic, about what the kernel's default
	// unres_qlen_bytes holds of small packets.
	pendingDepth = 256
	// pendingTimeout bounds how long a packet may wait for resolution even
	// if the owner never reports an outcome.
	pendingTimeout = int64(10e9)
)

// pendingQueue holds packets for one unresolved (port, next hop), in order.
type pendingQueue struct {
	used  bool
	port  int
	ip    uint32
	fails uint32 // entry's failure count when the first packet was queued
	since int64
	n     int
	ref   [pendingDepth]unsafe.Pointer
	buf   [pendingDepth][]byte
	len   [pendingDepth]uint16
}

type pendingSet struct {
	q      [pendingQueues]pendingQueue
	active int
}

// neighOutput resolves the link-layer destination once per sublist of
// consecutive packets with the same decision and next hop, writes the
// Ethernet header and queues the packets for transmission.
func (p *Pipeline) neighOutput() {
	// The neighbours this burst already resolved: packets to a few
	// gateways in random order make short sublists, and one lookup (and
	// one confirmation) per burst is all each neighbour needs.
	var seen [neighMemo]struct {
		port uint16
		nh   uint32
		mac  netaddr.MAC
	}
	nseen := 0
	for k := 0; k < p.nOut; {
		it := &p.out[k]
		end := k + 1
		for end < p.nOut && p.out[end].port == it.port && p.out[end].nh == it.nh {
			end++
		}
		var mac netaddr.MAC
		ok := false
		for j := 0; j < nseen; j++ {
			if seen[j].nh == it.nh && seen[j].port == it.port {
				mac, ok = seen[j].mac, true
				break
			}
		}
		if !ok {
			p.ctr.local[NeighLookups]++
			if mac, ok = p.neighMAC(int(it.port), it.nh); ok && nseen < neighMemo {
				s := &seen[nseen]
				s.port, s.nh, s.mac = it.port, it.nh, mac
				nseen++
			}
		}
		if ok && p.pending.active > 0 && p.pendingFor(int(it.port), it.nh) != nil {
			// The neighbour became usable after this pass's pendingPoll:
			// what waits for it leaves first, next pass.
			ok = false
		}
		if ok {
			hdr := ipv4EthHdr(mac, p.ports[it.port].MAC)
			port := int(it.port)
			txRef := p.io.TxRef[port]
			txLen := p.io.TxLen[port][:len(txRef)]
			n := int(p.io.TxN[port])
			for j := k; j < end; j++ {
				o := &p.out[j]
				*(*[EthHdrLen]byte)(o.data) = hdr
				if n < len(txRef) {
					txRef[n], txLen[n] = uintptr(o.ref), o.len
					n++
				} else {
					p.drop(o.ref, DropTxFull)
				}
			}
			p.io.TxN[port] = uint16(n)
		} else {
			for j := k; j < end; j++ {
				o := &p.out[j]
				p.enqueuePending(int(o.port), o.nh, o.ref, bytesAt(o.data, int(o.cap)), int(o.len))
			}
		}
		k = end
	}
	p.nOut = 0
}

// ipv4EthHdr is the Ethernet header of an IPv4 frame from src to dst.
func ipv4EthHdr(dst, src netaddr.MAC) (h [EthHdrLen]byte) {
	copy(h[0:6], dst[:])
	copy(h[6:12], src[:])
	be.PutUint16(h[EthTypeOff:], EtherIPv4)
	return h
}

// neighMAC returns the link-layer address for nh on port if the neighbour
// can be used now, and asks the owner to resolve it otherwise.
func (p *Pipeline) neighMAC(port int, nh uint32) (netaddr.MAC, bool) {
	nm := p.sh.Neigh
	if e := nm.Table(port).Lookup(nh); e != nil {
		// One atomic read gives state and MAC together.
		if st, mac, ok := e.Load(); ok {
			if st == neigh.Stale {
				nm.Resolve(p.core, port, nh)
			} else {
				nm.Touch(p.core, e)
			}
			return mac, true
		}
	}
	nm.Resolve(p.core, port, nh)
	return netaddr.MAC{}, false
}

// pendingFor is the queue of packets waiting for (port, nh), if any.
func (p *Pipeline) pendingFor(port int, nh uint32) *pendingQueue {
	for i := range p.pending.q {
		if q := &p.pending.q[i]; q.used && q.port == port && q.ip == nh {
			return q
		}
	}
	return nil
}

func (p *Pipeline) enqueuePending(port int, nh uint32, ref unsafe.Pointer, buf []byte, l int) {
	if q := p.pendingFor(port, nh); q != nil {
		p.pushPending(q, ref, buf, l)
		return
	}
	ps := &p.pending
	for i := range ps.q {
		if q := &ps.q[i]; !q.used {
			*q = pendingQueue{used: true, port: port, ip: nh, since: p.now}
			if e := p.sh.Neigh.Table(port).Lookup(nh); e != nil {
				q.fails = e.Failures()
			}
			ps.active++
			p.pushPending(q, ref, buf, l)
			return
		}
	}
	p.unresolvedDrop(ref, DropNeighQueueFull)
}

// unresolvedDrop drops a packet that waited for a neighbour, counting it
// also where 'neigh stats' reads it (unresolved_discards).
func (p *Pipeline) unresolvedDrop(ref unsafe.Pointer, why Counter) {
	p.sh.Neigh.UnresolvedDiscard(p.core)
	p.drop(ref, why)
}

func (p *Pipeline) pushPending(q *pendingQueue, ref unsafe.Pointer, buf []byte, l int) {
	if q.n >= pendingDepth {
		p.unresolvedDrop(ref, DropNeighQueueFull)
		return
	}
	q.ref[q.n], q.buf[q.n], q.len[q.n] = ref, buf, uint16(l)
	q.n++
	p.ctr.local[NeighQueued]++
}

// pendingPoll releases queued packets, in order, once their neighbour is
// usable, and turns them into ICMP host unreachable once it has failed.
func (p *Pipeline) pendingPoll() {
	ps := &p.pending
	if ps.active == 0 {
		return
	}
	for i := range ps.q {
		q := &ps.q[i]
		if !q.used {
			continue
		}
		e := p.sh.Neigh.Table(q.port).Lookup(q.ip)
		var st neigh.State
		if e != nil {
			st = e.State()
		}
		switch {
		case e != nil && st.Valid():
			mac, ok := e.MAC()
			if !ok {
				continue
			}
			hdr := ipv4EthHdr(mac, p.ports[q.port].MAC)
			for j := 0; j < q.n; j++ {
				copy(q.buf[j][:EthHdrLen], hdr[:])
				if !p.io.send(q.port, q.ref[j], int(q.len[j])) {
					p.drop(q.ref[j], DropTxFull)
				}
			}
			p.releasePending(q)
		case e != nil && (e.Failures() != q.fails || e.Dead()), p.now-q.since > pendingTimeout:
			for j := 0; j < q.n; j++ {
				p.ctr.local[DropNeighFailed]++
				p.sh.Neigh.UnresolvedDiscard(p.core)
				buf := q.buf[j]
				l := int(q.len[j])
				if p.sh.FIB.IsLocal(be.Uint32(buf[EthHdrLen+ipSrc:])) {
					// The router's own packets get no error about themselves.
					p.io.free(q.ref[j])
					continue
				}
				p.icmpError(q.ref[j], buf, l, ICMPDestUnreach, CodeHostUnreach, 0)
			}
			p.releasePending(q)
		}
	}
}

func (p *Pipeline) releasePending(q *pendingQueue) {
	for j := 0; j < q.n; j++ {
		q.buf[j] = nil
	}
	q.used = false
	q.n = 0
	p.pending.active--
}

// Drain frees every buffer the pipeline still holds; called when the core stops.
func (p *Pipeline) Drain() {
	for i := range p.pending.q {
		q := &p.pending.q[i]
		if !q.used {
			continue
		}
		for j := 0; j < q.n; j++ {
			p.io.free(q.ref[j])
		}
		p.releasePending(q)
	}
	p.ctr.publish()
}
