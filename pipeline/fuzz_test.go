package pipeline

import (
	"testing"
	"time"

	"ferry/netaddr"
)

// fuzzRules are the policy rules FuzzPipeline's port byte picks from (its
// bits 1-2): none, or one whose selector the seeds' packets match or not.
var fuzzRules = []string{"", "from 10.0.0.0/8 lookup 100", "to 203.0.113.128/25 lookup 100", "not from 192.0.2.0/24 lookup main"}

// FuzzPipeline feeds arbitrary frames to a pipeline, twice in a burst, with
// or without a policy rule: it must never panic, and every buffer must come
// back exactly once (sent, freed or queued).
func FuzzPipeline(f *testing.F) {
	f.Add(echoRequest(macR0, macA, ipA, ipB, 64, 1), uint8(0))
	f.Add(echoRequest(macR0, macA, ipA, ipR0, 1, 1), uint8(0))
	f.Add(arpFrame(1, netaddr.BroadcastMAC, macA, ipA, ipR0, netaddr.MAC{}), uint8(0))
	f.Add(arpFrame(2, macR1, macB, ipB, ipR1, macR1), uint8(1))
	f.Add(ipPacket(macR0, macA, ipA, ip4(10, 1, 1, 1), 64, ProtoUDP, make([]byte, 30)), uint8(0))
	f.Add(echoRequest(macR0, macA, ip4(10, 1, 1, 1), ip4(203, 0, 113, 9), 64, 1), uint8(2))
	f.Add(echoRequest(macR0, macA, ipA, ip4(203, 0, 113, 200), 64, 1), uint8(4))
	f.Add(echoRequest(macR0, macA, ip4(172, 16, 0, 1), ipB, 64, 1), uint8(6))
	f.Fuzz(func(t *testing.T, frame []byte, port uint8) {
		if len(frame) > 2000 {
			frame = frame[:2000]
		}
		h := newHarness(t)
		h.permanent(0, ipA, macA)
		if r := fuzzRules[int(port>>1)%len(fuzzRules)]; r != "" {
			h.addRoute("203.0.113.0/24", "via", "198.51.100.3", "dev", "port1", "table", "100")
			h.addRule(r)
		}
		h.burst(sent{int(port % 2), frame}, sent{int(port % 2), frame})
		h.step(5 * time.Second)
		h.burst()
		h.step(20 * time.Second)
		h.burst()
		h.p.Drain()
		h.collect()
		if h.held() != 0 {
			t.Fatalf("%d buffers leaked", h.held())
		}
	})
}

func TestChecksumAndTTL(t *testing.T) {
	for _, ttl := range []uint8{2, 64, 255} {
		f := echoRequest(macR0, macA, ipA, ipB, ttl, 1)
		ip := ipOf(f)
		decTTL(ip)
		if !ipv4HeaderOK(ip, 20) || ip[ipTTL] != ttl-1 {
			t.Fatalf("ttl %d: incremental checksum wrong", ttl)
		}
	}
	// Every checksum value, the end-around carries among them: the patch
	// gives what recomputing it gives, as a number (0 and 0xffff are the
	// same in ones' complement).
	ip := ipOf(echoRequest(macR0, macA, ipA, ipB, 64, 1))[:IPv4MinHdr]
	for id := 0; id < 1<<16; id++ {
		be.PutUint16(ip[ipID:], uint16(id))
		ip[ipTTL] = 64
		setIPv4Checksum(ip, IPv4MinHdr)
		decTTL(ip)
		got := be.Uint16(ip[ipCsum:])
		setIPv4Checksum(ip, IPv4MinHdr)
		if want := be.Uint16(ip[ipCsum:]); got != want && !(got == 0 && want == 0xffff || got == 0xffff && want == 0) {
			t.Fatalf("id %#x: patched checksum %#04x, recomputed %#04x", id, got, want)
		}
	}
}

// The fast 20-byte check agrees with the generic one on any header.
func FuzzHeaderChecksum(f *testing.F) {
	f.Add(make([]byte, 20))
	f.Add(ipOf(echoRequest(macR0, macA, ipA, ipB, 64, 1))[:20])
	f.Fuzz(func(t *testing.T, h []byte) {
		if len(h) < 20 {
			return
		}
		h = h[:20]
		if ipv4HeaderOK(h, 20) != (checksum(h, 0) == 0) {
			t.Fatalf("fast and generic checksums disagree on % x", h)
		}
	})
}
