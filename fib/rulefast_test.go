package fib

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// TestRulesCompiledDifferential checks the compiled rules (ruleVal over the
// structures) against the exact rule walk: random rule sets of up to 16
// rules over up to four tables besides local, main and default, with
// every selector and action, random routes of every kind in those
// tables, changed between rounds (the structures follow by incremental
// updates and rebuilds), and keys that hit the selectors and the prefixes.
func TestRulesCompiledDifferential(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	f := testFIB(t)
	must(t, f.SetPort(2, "port2", 1400, true))
	must(t, f.AddAddress(2, ip("203.0.113.1"), 24))
	tables := []string{"main", "100", "200", "300", "400"}
	gws := []string{"192.0.2.7", "192.0.2.8", "198.51.100.7", "203.0.113.9"}
	srcs := []uint32{ip("10.1.0.5"), ip("10.2.3.4"), ip("172.16.0.9"), ip("192.0.2.50"), ip("203.0.113.7")}
	var pfx []string
	addRoutes := func(n int) {
		for i := 0; i < n; i++ {
			var p string
			switch rng.Intn(4) {
			case 0:
				p = fmt.Sprintf("10.%d.0.0/16", rng.Intn(8))
			case 1:
				p = fmt.Sprintf("10.%d.%d.0/24", rng.Intn(8), rng.Intn(4))
			case 2:
				p = fmt.Sprintf("10.%d.%d.%d/%d", rng.Intn(8), rng.Intn(4), rng.Intn(256), 25+rng.Intn(8))
			default:
				p = fmt.Sprintf("%d.0.0.0/8", 10+rng.Intn(3))
			}
			line := p + " via " + gws[rng.Intn(len(gws))]
			switch rng.Intn(12) {
			case 0:
				line = "blackhole " + p
			case 1:
				line = "unreachable " + p
			case 2:
				line = "prohibit " + p
			case 3:
				line = "throw " + p
			case 4:
				line += " tos 0x10"
			case 5:
				line = p + " nexthop via " + gws[0] + " nexthop via " + gws[2]
			}
			line += " table " + tables[rng.Intn(len(tables))]
			if run(t, f, "add", line) == nil {
				pfx = append(pfx, line)
			}
		}
	}
	delRoutes := func(n int) {
		for i := 0; i < n && len(pfx) > 0; i++ {
			j := rng.Intn(len(pfx))
			must(t, run(t, f, "del", pfx[j]))
			pfx[j] = pfx[len(pfx)-1]
			pfx = pfx[:len(pfx)-1]
		}
	}
	randRule := func(prio int) string {
		var w []string
		w = append(w, "priority", fmt.Sprint(prio))
		if rng.Intn(5) == 0 {
			w = append(w, "not")
		}
		if rng.Intn(2) == 0 {
			w = append(w, "from", fmt.Sprintf("10.%d.0.0/16", 1+rng.Intn(2)))
		}
		if rng.Intn(3) == 0 {
			w = append(w, "to", fmt.Sprintf("10.%d.0.0/%d", rng.Intn(8), 13+rng.Intn(4)))
		}
		if rng.Intn(5) == 0 {
			w = append(w, "tos", "0x10")
		}
		if rng.Intn(6) == 0 {
			w = append(w, "fwmark", "1")
		}
		if rng.Intn(4) == 0 {
			w = append(w, "iif", []string{"port0", "port1", "lo"}[rng.Intn(3)])
		}
		act := rng.Intn(8)
		if len(w) == 2 && act < 3 && rng.Intn(4) > 0 {
			// A rule for all packets that ends the walk hides every
			// later one: keep those rare.
			act = 3
		}
		switch act {
		case 0:
			w = append(w, "blackhole")
		case 1:
			w = append(w, "unreachable")
		case 2:
			w = append(w, "prohibit")
		default:
			w = append(w, "lookup", tables[rng.Intn(len(tables))])
		}
		return strings.Join(w, " ")
	}
	var ruleLines []string
	stats := map[string]int{}
	for round := 0; round < 60; round++ {
		// New rules now and then: some rounds with selectors, some with
		// only rules that select all packets, some with none.
		if round%4 == 0 {
			for _, l := range ruleLines {
				r, err := ParseRule(strings.Fields(l), f)
				must(t, err)
				must(t, f.DelRule(r))
			}
			ruleLines = ruleLines[:0]
			n := rng.Intn(17)
			if round%8 == 4 {
				n = 0
			}
			for i := 0; i < n; i++ {
				l := randRule(1 + rng.Intn(32000))
				if round%12 == 8 {
					l = fmt.Sprintf("priority %d lookup %s", 1+rng.Intn(32000), tables[rng.Intn(len(tables))])
				}
				r, err := ParseRule(strings.Fields(l), f)
				must(t, err)
				if f.AddRule(r) == nil {
					ruleLines = append(ruleLines, l)
				}
			}
		}
		addRoutes(40)
		delRoutes(10)
		if f.HasCustomRules() != (f.fast.Load().prog != nil) {
			t.Fatalf("round %d: custom rules %v, compiled %v", round, f.HasCustomRules(), f.fast.Load().prog != nil)
		}
		keys := make([]Key, 256)
		for j := range keys {
			k := Key{Dst: ip("10.0.0.0") | uint32(rng.Intn(8))<<16 | uint32(rng.Intn(4))<<8 | uint32(rng.Intn(256)),
				Src: srcs[rng.Intn(len(srcs))], Iif: rng.Intn(3), Oif: -1, Hash: rng.Uint32()}
			switch rng.Intn(6) {
			case 0:
				k.Dst = ip("11.0.0.1") + uint32(rng.Intn(1<<24))
			case 1: // no table covers it: the rules that end the walk do
				k.Dst = ip("13.0.0.1") + uint32(rng.Intn(1<<24))
			}
			if rng.Intn(3) == 0 {
				k.Tos = 0x10
			}
			if rng.Intn(4) == 0 {
				k.Mark = 1
			}
			keys[j] = k
		}
		bulk := make([]Result, len(keys))
		f.LookupBulk(keys, bulk)
		for j := range keys {
			k := keys[j]
			var got, want Result
			f.Lookup(&k, &got)
			f.LookupExact(&k, &want)
			stats[fmt.Sprintf("%v %v", want.Type, want.Err)]++
			if got.Route == nil {
				stats["compiled"]++
				want.Route = nil
			}
			wb := want
			if bulk[j].Route == nil {
				wb.Route = nil
			}
			if d := resultDiff(&got, &want) + resultDiff(&bulk[j], &wb); d != "" {
				t.Fatalf("round %d: input %+v differs in%s:\n got  %+v\n bulk %+v\n walk %+v\nrules:\n%s", round, k, d, got, bulk[j], want, rules(f))
			}
			// The router's own output: no input port, a source or none.
			k.Iif = -1
			if rng.Intn(2) == 0 {
				k.Src = 0
			}
			f.LookupOutput(&k, &got)
			f.LookupOutputExact(&k, &want)
			if got.Route == nil {
				want.Route = nil
			}
			if d := resultDiff(&got, &want); d != "" {
				t.Fatalf("round %d: output %+v differs in%s:\n got  %+v\n walk %+v\nrules:\n%s", round, k, d, got, want, rules(f))
			}
		}
	}
	t.Logf("results: %v", stats)
	for _, k := range []string{"unreachable network is unreachable", "prohibit permission denied", "blackhole invalid argument", "unicast <nil>", "unspec network is unreachable"} {
		if stats[k] == 0 {
			t.Errorf("no lookup ended %q", k)
		}
	}
	if stats["compiled"] < 1000 {
		t.Errorf("compiled rules answered only %d lookups", stats["compiled"])
	}
}
