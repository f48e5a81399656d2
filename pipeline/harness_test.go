package pipeline

import (
	"testing"
	"time"
	"unsafe"

	"ferry/cache"
	"ferry/cache/neigh"
	"ferry/fib"
	"ferry/netaddr"
)

// testBuf is a packet buffer in Go memory standing in for an mbuf.
type testBuf struct {
	id   int
	data [9600]byte
}

// harness runs one pipeline over Go-memory IO and checks that every buffer
// handed in comes out exactly once: sent, freed or still queued.
type harness struct {
	t     testing.TB
	sh    *Dataplane
	p     *Pipeline
	io    IO
	nm    *neigh.Manager
	clk   *fakeClock
	f     *fib.FIB
	gen   *cache.GenID
	bufs  map[uintptr]*testBuf // by handle: the map keeps them alive
	next  int
	rxN   uint32
	freeN uint32
	alloN uint32

	macs [2]netaddr.MAC
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

var (
	macR0 = netaddr.MAC{0x02, 0, 0, 0, 0, 0x10}
	macR1 = netaddr.MAC{0x02, 0, 0, 0, 0, 0x11}
	macA  = netaddr.MAC{0x02, 0, 0, 0, 0, 0xa0}
	macB  = netaddr.MAC{0x02, 0, 0, 0, 0, 0xb0}
)

func ip4(a, b, c, d byte) uint32 { return uint32(a)<<24 | uint32(b)<<16 | uint32(c)<<8 | uint32(d) }

// newHarness makes the pipeline under test; setup runs on its Dataplane
// before the pipeline is made.
func newHarness(t testing.TB, setup ...func(*Dataplane)) *harness {
	h := &harness{t: t, bufs: map[uintptr]*testBuf{}, macs: [2]netaddr.MAC{macR0, macR1}}
	h.gen = &cache.GenID{}
	h.f = fib.New(h.gen, 1)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.f.SetPort(0, "port0", 1500, true))
	must(h.f.SetPort(1, "port1", 1500, true))
	must(h.f.AddAddress(0, ip4(192, 0, 2, 1), 24))
	must(h.f.AddAddress(1, ip4(198, 51, 100, 1), 24))
	rt, err := fib.ParseRoute([]string{"203.0.113.0/24", "via", "198.51.100.2", "dev", "port1"}, h.f)
	must(err)
	must(h.f.Add(rt))
	ports := []PortInfo{{Name: "port0", MAC: macR0, MTU: 1500, Up: true}, {Name: "port1", MAC: macR1, MTU: 1500, Up: true}}
	h.clk = &fakeClock{t: time.Unix(1000, 0)}
	tx := &NeighTx{}
	h.nm = neigh.NewManager([]neigh.PortConfig{
		{Name: "port0", MAC: macR0, Addrs: []uint32{ip4(192, 0, 2, 1)}, Params: neigh.DefaultParams()},
		{Name: "port1", MAC: macR1, Addrs: []uint32{ip4(198, 51, 100, 1)}, Params: neigh.DefaultParams()},
	}, 1, h.clk, tx, nil)
	h.sh = NewDataplane(h.f, h.gen, h.nm, tx, ports, 1)
	h.sh.UseClock(h.clk) // one clock: the owner's and the pipeline's
	goIO(&h.io, &h.rxN, &h.freeN, &h.alloN, h.newBuf)
	for _, f := range setup {
		f(h.sh)
	}
	h.p = h.sh.NewPipeline(0, &h.io)
	return h
}

// goIO wires io over Go memory for two ports, as the data plane's shim
// does over C memory; spare buffers come from newBuf.
func goIO(io *IO, rxN, freeN, alloN *uint32, newBuf func() *testBuf) {
	io.RxN = rxN
	io.Rx = make([]RxPkt, RxMax)
	io.TxN = make([]uint16, 2)
	io.TxRef = [][]uintptr{make([]uintptr, TxMax), make([]uintptr, TxMax)}
	io.TxLen = [][]uint16{make([]uint16, TxMax), make([]uint16, TxMax)}
	io.FreeN = freeN
	io.FreeRef = make([]unsafe.Pointer, FreeMax)
	io.AllocN = alloN
	io.AllocRef = make([]unsafe.Pointer, BurstSize)
	io.AllocData = make([]unsafe.Pointer, BurstSize)
	io.AllocCap = make([]uint16, BurstSize)
	io.Refill = func(n int) {
		for int(*alloN) < n {
			b := newBuf()
			io.AllocRef[*alloN] = unsafe.Pointer(b)
			io.AllocData[*alloN] = unsafe.Pointer(&b.data[0])
			io.AllocCap[*alloN] = uint16(len(b.data))
			*alloN++
		}
	}
}

func (h *harness) newBuf() *testBuf {
	b := &testBuf{id: h.next}
	h.next++
	h.bufs[uintptr(unsafe.Pointer(b))] = b
	return b
}

// rx puts frame, copied into b, in slot i of the received burst.
func (h *harness) rx(i int, b *testBuf, frame []byte, port int) {
	copy(b.data[:], frame)
	// The data plane leaves the header fields as the last pass left them.
	h.io.Rx[i] = RxPkt{Ref: unsafe.Pointer(b), Data: unsafe.Pointer(&b.data[0]), Len: uint16(len(frame)), Cap: uint16(len(b.data)),
		Port: uint16(port), Dst: 0xdeadbeef, Src: 0xdeadbeef, TOS: 0xff}
}

// sent is one transmitted frame.
type sent struct {
	port  int
	frame []byte
}

// burst runs frames (port, bytes) through the pipeline and returns what it
// sent; freed buffers are forgotten.
func (h *harness) burst(in ...sent) []sent {
	h.rxN = uint32(len(in))
	for i, s := range in {
		h.rx(i, h.newBuf(), s.frame, s.port)
	}
	if len(in) > 0 {
		h.p.Process()
	} else {
		h.p.Idle()
	}
	return h.collect()
}

func (h *harness) collect() []sent {
	io := &h.io
	var out []sent
	for port := range io.TxN {
		for j := 0; j < int(io.TxN[port]); j++ {
			ref := io.TxRef[port][j]
			b, ok := h.bufs[ref]
			if !ok {
				h.t.Fatalf("sent a buffer twice or one never handed in")
			}
			delete(h.bufs, ref)
			out = append(out, sent{port: port, frame: append([]byte(nil), b.data[:io.TxLen[port][j]]...)})
		}
		io.TxN[port] = 0
	}
	for j := 0; j < int(h.freeN); j++ {
		if _, ok := h.bufs[uintptr(io.FreeRef[j])]; !ok {
			h.t.Fatalf("freed a buffer twice or one never handed in")
		}
		delete(h.bufs, uintptr(io.FreeRef[j]))
	}
	h.freeN = 0
	return out
}

// held is how many buffers the pipeline still owns (queued or spare).
func (h *harness) held() int { return len(h.bufs) - int(h.alloN) }

// step lets the neighbour owner run at the fake clock's time.
func (h *harness) step(d time.Duration) {
	h.clk.t = h.clk.t.Add(d)
	h.nm.Step(h.clk.t)
}

func (h *harness) counter(c Counter) uint64 { return h.p.ctr.local[c] }

// Frame builders.

func ethHdr(b []byte, dst, src netaddr.MAC, typ uint16) {
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	be.PutUint16(b[12:], typ)
}

// ipPacket builds Ethernet+IPv4 with payload; proto ICMP payloads get a checksum.
func ipPacket(dst, src netaddr.MAC, sip, dip uint32, ttl, proto uint8, payload []byte) []byte {
	b := make([]byte, EthHdrLen+IPv4MinHdr+len(payload))
	ethHdr(b, dst, src, EtherIPv4)
	ip := b[EthHdrLen:]
	ip[0] = 0x45
	be.PutUint16(ip[ipTotLen:], uint16(IPv4MinHdr+len(payload)))
	be.PutUint16(ip[ipID:], 0x1234)
	be.PutUint16(ip[ipFragOff:], ipFlagDF)
	ip[ipTTL] = ttl
	ip[ipProto] = proto
	be.PutUint32(ip[ipSrc:], sip)
	be.PutUint32(ip[ipDst:], dip)
	copy(ip[IPv4MinHdr:], payload)
	setIPv4Checksum(ip, IPv4MinHdr)
	return b
}

func echoRequest(dst, src netaddr.MAC, sip, dip uint32, ttl uint8, seq uint16) []byte {
	pl := make([]byte, 8+32)
	pl[0] = ICMPEcho
	be.PutUint16(pl[4:], 0x77)
	be.PutUint16(pl[6:], seq)
	for i := 8; i < len(pl); i++ {
		pl[i] = byte(i)
	}
	be.PutUint16(pl[2:], checksum(pl, 0))
	return ipPacket(dst, src, sip, dip, ttl, ProtoICMP, pl)
}

func arpFrame(op uint16, dst, src netaddr.MAC, sip, tip uint32, tha netaddr.MAC) []byte {
	b := make([]byte, 60)
	BuildARP(b, op, dst, src, sip, tip, tha)
	return b
}

func neighPermanent(port int, ip uint32, mac netaddr.MAC) neigh.Request {
	return neigh.Request{Cmd: neigh.CmdAdd, Port: port, IP: ip, MAC: mac, HasMAC: true, State: neigh.Permanent}
}
