package bgptable

import (
	"testing"

	"ferry/netaddr"
)

func TestGenerate(t *testing.T) {
	const n = 20000
	ps := Generate(n, 7)
	if len(ps) != n || Generate(n, 7)[n-1] != ps[n-1] {
		t.Fatal("not deterministic for a seed")
	}
	seen := map[netaddr.Prefix]bool{}
	c24 := 0
	for _, p := range ps {
		if seen[p] {
			t.Fatalf("%s twice", p)
		}
		seen[p] = true
		if p.Addr&^p.Mask() != 0 {
			t.Fatalf("%s has host bits", p)
		}
		if p.Len == 24 {
			c24++
		}
	}
	if c24 < n*55/100 || c24 > n*65/100 {
		t.Errorf("%d /24 of %d", c24, n)
	}
}

func TestAddrs(t *testing.T) {
	ps := Generate(1000, 1)
	for _, a := range Addrs(ps, 1000, 2) {
		found := false
		for _, p := range ps {
			if p.Contains(a) {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("%s is in no prefix", netaddr.IPv4String(a))
		}
	}
	flows := map[uint32]bool{}
	for _, a := range SkewedAddrs(ps, 5000, 50, 3) {
		flows[a] = true
	}
	if len(flows) > 50 {
		t.Fatalf("%d destinations from 50 flows", len(flows))
	}
}
