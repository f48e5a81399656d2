// Package bgptable makes synthetic IPv4 routing tables shaped like the
// global BGP table, and destinations to look up in them, for benchmarks,
// tests and the traffic generator.
package bgptable

import (
	"math/rand"

	"ferry/netaddr"
)

// Generate returns n distinct prefixes shaped like the global BGP table,
// deterministic for a seed: about 60% /24, 20% /22–/23, 17% /16–/21 and the
// rest /8–/15 and /25–/32. Like real allocations they cluster: most fall in
// a set of busy /16 blocks of the public unicast space.
func Generate(n int, seed int64) []netaddr.Prefix {
	rng := rand.New(rand.NewSource(seed))
	blocks := n / 20
	if blocks < 16 {
		blocks = 16
	}
	busy := make([]uint32, blocks)
	for i := range busy {
		busy[i] = publicAddr(rng) &^ 0xffff
	}
	seen := make(map[netaddr.Prefix]struct{}, n)
	out := make([]netaddr.Prefix, 0, n)
	for len(out) < n {
		var plen uint8
		switch x := rng.Intn(1000); {
		case x < 600:
			plen = 24
		case x < 800:
			plen = uint8(22 + rng.Intn(2))
		case x < 970:
			plen = uint8(16 + rng.Intn(6))
		case x < 985:
			plen = uint8(8 + rng.Intn(8))
		default:
			plen = uint8(25 + rng.Intn(8))
		}
		var a uint32
		if plen >= 16 && rng.Intn(10) < 8 {
			a = busy[rng.Intn(len(busy))] | uint32(rng.Intn(1<<16))
		} else {
			a = publicAddr(rng)
		}
		p := netaddr.Prefix{Addr: a & netaddr.Mask(plen), Len: plen}
		if _, dup := seen[p]; dup {
			continue
		}
		seen[p] = struct{}{}
		out = append(out, p)
	}
	return out
}

// publicAddr draws from 1.0.0.0–223.255.255.255 outside 10/8, 127/8 and
// 172.16/12, 192.168/16.
func publicAddr(rng *rand.Rand) uint32 {
	for {
		a := uint32(rng.Int63n(0xe0000000-0x01000000)) + 0x01000000
		switch {
		case a>>24 == 10, a>>24 == 127, a>>20 == 0xac1, a>>16 == 0xc0a8:
			continue
		}
		return a
	}
}

// Addrs returns n addresses: each a uniformly random address inside a
// uniformly random prefix of ps, so every prefix is hit alike and the
// lookups wander over the whole table.
func Addrs(ps []netaddr.Prefix, n int, seed int64) []uint32 {
	rng := rand.New(rand.NewSource(seed))
	out := make([]uint32, n)
	for i := range out {
		p := ps[rng.Intn(len(ps))]
		out[i] = p.Addr | uint32(rng.Int63())&^netaddr.Mask(p.Len)
	}
	return out
}

// SkewedAddrs returns n addresses drawn from `flows` destinations with
// a Zipf law (s = 1.1), as real traffic concentrates on a few flows.
func SkewedAddrs(ps []netaddr.Prefix, n, flows int, seed int64) []uint32 {
	rng := rand.New(rand.NewSource(seed))
	dst := Addrs(ps, flows, seed+1)
	z := rand.NewZipf(rng, 1.1, 1, uint64(flows-1))
	out := make([]uint32, n)
	for i := range out {
		out[i] = dst[z.Uint64()]
	}
	return out
}
