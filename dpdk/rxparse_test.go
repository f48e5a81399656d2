//go:build cgo

package dpdk

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"ferry/netaddr"
	"ferry/pipeline"
)

var (
	parseMAC  = netaddr.MAC{0x02, 0, 0, 0, 0, 0x01}
	otherMAC  = netaddr.MAC{0x02, 0, 0, 0, 0, 0x02}
	mcastMAC  = netaddr.MAC{0x01, 0, 0x5e, 0, 0, 0x05}
	parseWord = pipeline.MACWord(parseMAC)
)

// ipFrame is an Ethernet frame to dst carrying an option-less IPv4 header
// from src to dip with a valid checksum, padded to frameLen.
func ipFrame(dst netaddr.MAC, sip, dip uint32, tos uint8, payload, frameLen int) []byte {
	b := make([]byte, max(14+20+payload, frameLen))
	copy(b, dst[:])
	copy(b[6:], otherMAC[:])
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0], ip[1] = 0x45, tos
	binary.BigEndian.PutUint16(ip[2:], uint16(20+payload))
	ip[8], ip[9] = 64, 17
	binary.BigEndian.PutUint32(ip[12:], sip)
	binary.BigEndian.PutUint32(ip[16:], dip)
	fixChecksum(b)
	return b
}

// fixChecksum makes the IPv4 header checksum of frame b right.
func fixChecksum(b []byte) {
	if len(b) < 34 {
		return
	}
	ip := b[14:34]
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], pipeline.Checksum(ip))
}

// goParse is the pipeline's own check of frame, the reference.
func goParse(frame []byte, port uint16, mac uint64, sumGood bool) (pipeline.RxPkt, bool) {
	buf := make([]byte, len(frame)+8)
	copy(buf, frame)
	r := pipeline.RxPkt{Data: unsafe.Pointer(&buf[0]), Len: uint16(len(frame)), Cap: uint16(len(frame)), Port: port}
	ok := pipeline.ParseUsual(&r, mac, sumGood)
	r.Usual = ok
	r.Data = nil
	return r, ok
}

func TestParseUsual(t *testing.T) {
	const src, dst = 0xc000020a, 0xcb007105 // 192.0.2.10, 203.0.113.5
	opts := ipFrame(parseMAC, src, dst, 0, 28, 0)
	opts[14] = 0x46
	badSum := ipFrame(parseMAC, src, dst, 0, 26, 0)
	badSum[24] ^= 0xff
	long := ipFrame(parseMAC, src, dst, 0, 26, 0)
	binary.BigEndian.PutUint16(long[16:], 20+27)
	fixChecksum(long)
	arp := ipFrame(parseMAC, src, dst, 0, 26, 0)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	for _, tc := range []struct {
		name    string
		frame   []byte
		sumGood bool // the device found the checksum right
		ok      bool
		len     uint16
	}{
		{"unicast to the port", ipFrame(parseMAC, src, dst, 0x10, 26, 0), false, true, 60},
		{"padding trimmed", ipFrame(parseMAC, src, dst, 0, 8, 60), false, true, 42},
		{"multicast MAC", ipFrame(mcastMAC, src, dst, 0, 26, 0), false, true, 60},
		{"another station's MAC", ipFrame(otherMAC, src, dst, 0, 26, 0), false, false, 0},
		{"header options", opts, false, false, 0},
		{"bad checksum", badSum, false, false, 0},
		// The device's word is taken: the header is not summed again.
		{"bad checksum the device found right", badSum, true, true, 60},
		{"device-checked, another station's MAC", ipFrame(otherMAC, src, dst, 0, 26, 0), true, false, 0},
		{"device-checked, header options", opts, true, false, 0},
		{"device-checked, loopback source", ipFrame(parseMAC, 0x7f000001, dst, 0, 26, 0), true, false, 0},
		{"total length past the frame", long, false, false, 0},
		{"ARP", arp, false, false, 0},
		{"short", ipFrame(parseMAC, src, dst, 0, 26, 0)[:33], false, false, 0},
		{"loopback source", ipFrame(parseMAC, 0x7f000001, dst, 0, 26, 0), false, false, 0},
		{"zero-net destination", ipFrame(parseMAC, src, 0x00000001, 0, 26, 0), false, false, 0},
		{"multicast destination", ipFrame(parseMAC, src, 0xe0000005, 0, 26, 0), false, false, 0},
		{"class E source", ipFrame(parseMAC, 0xf0000001, dst, 0, 26, 0), false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cok := parseUsual(tc.frame, 1, parseWord, tc.sumGood)
			g, gok := goParse(tc.frame, 1, parseWord, tc.sumGood)
			if cok != tc.ok || gok != tc.ok {
				t.Fatalf("usual: shim %v, pipeline %v, want %v", cok, gok, tc.ok)
			}
			if c != g {
				t.Fatalf("shim left %+v, pipeline %+v", c, g)
			}
			if tc.ok && (c.Len != tc.len || c.Dst != dst || c.Src != src || !c.Usual) {
				t.Fatalf("record %+v: want len %d, %#x to %#x", c, tc.len, src, dst)
			}
		})
	}
}

// FuzzParseUsual holds the shim's receive checks to the pipeline's: a
// frame one passes and the other fails would skip checks or lose its fast
// path.
func FuzzParseUsual(f *testing.F) {
	f.Add(ipFrame(parseMAC, 0xc000020a, 0xcb007105, 0, 26, 0), uint8(0))
	f.Add(ipFrame(mcastMAC, 0xc000020a, 0xcb007105, 0, 8, 60), uint8(1))
	f.Add(ipFrame(parseMAC, 0x7f000001, 0xe0000001, 0, 26, 0), uint8(2))
	f.Add([]byte{0x02, 0, 0, 0, 0, 1}, uint8(3))
	f.Add(ipFrame(parseMAC, 0xc000020a, 0xcb007105, 0, 26, 0)[:40], uint8(4))
	f.Fuzz(func(t *testing.T, frame []byte, how uint8) {
		if len(frame) > 2048 {
			return
		}
		mac := parseWord
		if how&1 != 0 && len(frame) >= 6 {
			var m netaddr.MAC
			copy(m[:], frame)
			mac = pipeline.MACWord(m)
		}
		if how&2 != 0 {
			// Past the checksum, to the checks behind it.
			fixChecksum(frame)
		}
		sumGood := how&4 != 0
		c, cok := parseUsual(frame, 0, mac, sumGood)
		g, gok := goParse(frame, 0, mac, sumGood)
		if cok != gok || c != g {
			t.Fatalf("frame % x: shim %v %+v, pipeline %v %+v", frame, cok, c, gok, g)
		}
	})
}
