package fib

import (
	"math/rand"
	"testing"
)

// TestMergedDifferential checks the merged fast path of the default rules
// (Lookup, LookupOutput, LookupBulk, LookupDsts) against the exact rule
// walk, which a never-matching custom rule forces, over random changes of
// the local, main and default tables with every route type, TOS routes,
// metrics, multipath and ports going down.
func TestMergedDifferential(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	f := testFIB(t)
	must(t, f.SetPort(2, "port2", 1500, true))
	must(t, f.AddAddress(2, ip("10.0.0.1"), 8))
	must(t, f.AddAddress(2, ip("128.0.0.1"), 16))
	tables := []uint32{TableLocal, TableMain, TableMain, TableMain, TableDefault}
	types := []Type{Unicast, Unicast, Unicast, Blackhole, Unreachable, Prohibit, Throw, Local, Broadcast, Anycast}
	ops, checks := 3000, 400
	if testing.Short() || raceEnabled {
		ops, checks = 800, 150
	}
	dummy := Rule{Priority: 5, IifName: "nope", Action: ActionLookup, Table: 100}
	keys := make([]Key, checks)
	got := make([]Result, checks)
	bulk := make([]Result, checks)
	out := make([]Result, checks)
	dsts := make([]uint32, checks)
	routes := make([]*Route, checks)
	okeys := make([]Key, checks)
	stats := map[string]int{}
	for i := 0; i < ops; i++ {
		p := Prefix{Len: uint8(rng.Intn(33))}
		p.Addr = overlapAddr(rng) & mask(p.Len)
		typ := types[rng.Intn(len(types))]
		r := Route{Table: tables[rng.Intn(len(tables))], Dst: p.Addr, Len: p.Len, Type: typ,
			Priority: uint32(rng.Intn(3)), MTU: uint32(1000 + rng.Intn(100))}
		if rng.Intn(5) == 0 {
			r.Tos = 0x10
		}
		switch typ {
		case Unicast, Local, Broadcast, Anycast:
			r.Scope = ScopeLink
			if typ == Local {
				r.Scope = ScopeHost
			}
			r.Nexthops = []*Nexthop{{Port: rng.Intn(3), Weight: 1}}
			if typ == Unicast && rng.Intn(4) == 0 {
				r.Nexthops = append(r.Nexthops, &Nexthop{Port: rng.Intn(3), Weight: 2})
			}
		}
		switch rng.Intn(4) {
		case 0:
			_ = f.Del(Route{Table: r.Table, Dst: p.Addr, Len: p.Len, Tos: r.Tos})
		case 1:
			_ = f.Replace(r)
		default:
			_ = f.Add(r)
		}
		if rng.Intn(100) == 0 {
			port := rng.Intn(3)
			must(t, f.SetPort(port, f.PortName(port), 1500, rng.Intn(2) == 0))
		}
		if i%50 != 49 {
			continue
		}
		for j := range keys {
			d := overlapAddr(rng)
			if rng.Intn(4) == 0 {
				d = ip("10.0.0.0") | rng.Uint32()&0xffffff
			}
			keys[j] = Key{Dst: d, Src: ip("192.0.2.9"), Iif: 0, Oif: -1, Hash: rng.Uint32()}
			if rng.Intn(3) == 0 {
				keys[j].Tos = 0x10
			}
			dsts[j] = d
		}
		if f.HasCustomRules() {
			t.Fatal("custom rules")
		}
		for j := range keys {
			f.Lookup(&keys[j], &got[j])
			k := keys[j]
			k.Iif, k.Src = -1, 0
			if rng.Intn(4) == 0 {
				k.Oif = rng.Intn(3)
			}
			okeys[j] = k
			f.LookupOutput(&okeys[j], &out[j])
		}
		f.LookupBulk(keys, bulk)
		f.LookupDsts(dsts, routes)
		must(t, f.AddRule(dummy))
		for j := range keys {
			var want Result
			f.Lookup(&keys[j], &want)
			stats[want.Type.String()+errText0(want.Err)]++
			if want != got[j] || want != bulk[j] {
				t.Fatalf("op %d: lookup %+v:\n fast %+v\n bulk %+v\n want %+v", i, keys[j], got[j], bulk[j], want)
			}
			k := Key{Dst: dsts[j], Iif: -1, Oif: -1}
			f.Lookup(&k, &want)
			wr := want.Route
			if want.Err != nil {
				wr = nil
			}
			if routes[j] != wr {
				t.Fatalf("op %d: LookupDsts %s: %v, want %v", i, ipStr(dsts[j]), routes[j], wr)
			}
			f.LookupOutput(&okeys[j], &want)
			if want != out[j] {
				t.Fatalf("op %d: output %+v:\n fast %+v\n want %+v", i, okeys[j], out[j], want)
			}
		}
		must(t, f.DelRule(dummy))
	}
	t.Logf("results: %v", stats)
}

func errText0(err error) string {
	if err == nil {
		return ""
	}
	return " " + errText(err)
}
