package fib

import (
	"errors"
	"math"
	"strings"
	"syscall"
	"testing"

	"ferry/netaddr"
)

func rules(f *FIB) string {
	var s []string
	for _, r := range f.Rules() {
		s = append(s, FormatRule(r, f))
	}
	return strings.Join(s, "\n")
}

func TestRules(t *testing.T) {
	f := testFIB(t)
	if f.HasCustomRules() {
		t.Error("custom rules at start")
	}
	want := "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default"
	if got := rules(f); got != want {
		t.Errorf("default rules:\n%s", got)
	}
	add := func(line string) {
		t.Helper()
		r, err := ParseRule(strings.Fields(line), f)
		must(t, err)
		must(t, f.AddRule(r))
	}
	add("from 192.0.2.0/24 lookup 100")
	add("priority 100 to 10.5.0.0/16 prohibit")
	add("pref 200 not fwmark 0x10/0xf0 iif port0 table 200")
	add("order 300 tos 0x08 oif nope unreachable")
	add("priority 400 from 203.0.113.7 blackhole")
	if !f.HasCustomRules() {
		t.Error("HasCustomRules false")
	}
	want = "0:\tfrom all lookup local\n" +
		"100:\tfrom all to 10.5.0.0/16 prohibit\n" +
		"200:\tnot from all fwmark 0x10/0xf0 iif port0 lookup 200\n" +
		"300:\tfrom all tos 0x08 oif nope [detached] unreachable\n" +
		"400:\tfrom 203.0.113.7 blackhole\n" +
		"32765:\tfrom 192.0.2.0/24 lookup 100\n" +
		"32766:\tfrom all lookup main\n" +
		"32767:\tfrom all lookup default"
	if got := rules(f); got != want {
		t.Errorf("rules:\n%s\nwant:\n%s", got, want)
	}
	if err := f.AddRule(Rule{Priority: 400, Src: ip("203.0.113.7"), SrcLen: 32, Action: ActionBlackhole}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate rule: %v", err)
	}

	must(t, run(t, f, "add", "default via 192.0.2.254"))
	must(t, run(t, f, "add", "10.0.0.0/8 via 198.51.100.9 table 100"))
	must(t, run(t, f, "add", "throw 10.7.0.0/16 table 100"))
	must(t, run(t, f, "add", "10.0.0.0/8 via 192.0.2.200 table 200"))
	in := func(src, dst string, iif int, mark uint32, tos uint8) string {
		k := Key{Dst: ip(dst), Src: ip(src), Iif: iif, Oif: -1, Mark: mark, Tos: tos}
		var res, fast Result
		f.LookupExact(&k, &res)
		// The compiled rules answer as the walk does.
		f.Lookup(&k, &fast)
		if fast.Route == nil {
			fast.Route = res.Route
		}
		if d := resultDiff(&fast, &res); d != "" {
			t.Errorf("%s from %s iif %d: compiled rules differ in%s: %+v, walk %+v", dst, src, iif, d, fast, res)
		}
		if res.Err != nil {
			return errText(res.Err)
		}
		return FormatRoute(res.Route, f)
	}
	cases := []struct {
		src, dst string
		iif      int
		mark     uint32
		tos      uint8
		want     string
	}{
		{"192.0.2.9", "10.1.1.1", 0, 0x10, 0, "10.0.0.0/8 via 198.51.100.9 dev port1"},   // rule 32765
		{"192.0.2.9", "10.7.1.1", 0, 0x10, 0, "default via 192.0.2.254 dev port0"},       // throw → main
		{"192.0.2.9", "10.5.1.1", 0, 0x10, 0, "Permission denied"},                       // prohibit rule
		{"198.51.100.9", "10.1.1.1", 0, 0x20, 0, "10.0.0.0/8 via 192.0.2.200 dev port0"}, // not fwmark → 200
		{"198.51.100.9", "10.1.1.1", 1, 0x10, 0, "10.0.0.0/8 via 192.0.2.200 dev port0"}, // not (iif port0 ...)
		{"198.51.100.9", "10.1.1.1", 0, 0x10, 0x08, "default via 192.0.2.254 dev port0"}, // oif nope never matches
		{"203.0.113.7", "10.1.1.1", 0, 0x10, 0, "Invalid argument"},                      // blackhole rule
		{"198.51.100.9", "192.0.2.1", 0, 0, 0, "local 192.0.2.1 dev port0 proto kernel scope host src 192.0.2.1"},
	}
	for _, c := range cases {
		if got := in(c.src, c.dst, c.iif, c.mark, c.tos); got != c.want {
			t.Errorf("%s -> %s iif %d mark %#x: %q, want %q", c.src, c.dst, c.iif, c.mark, got, c.want)
		}
	}
	// Unreachable rule.
	add("priority 50 from 198.51.100.77 unreachable")
	if got := in("198.51.100.77", "10.1.1.1", 0, 0, 0); got != "Network is unreachable" {
		t.Errorf("unreachable rule: %q", got)
	}
	// Deleting by selector, with the priority unset, as `ip rule del`.
	for _, line := range []string{"from 198.51.100.77 unreachable", "to 10.5.0.0/16", "fwmark 0x10/0xf0 not",
		"tos 0x08", "priority 400", "from 192.0.2.0/24 lookup 100"} {
		r, err := ParseRule(strings.Fields(line), f)
		must(t, err)
		if err := f.DelRule(r); err != nil {
			t.Errorf("del rule %q: %v", line, err)
		}
	}
	if f.HasCustomRules() {
		t.Errorf("HasCustomRules after deleting all:\n%s", rules(f))
	}
	if err := f.DelRule(Rule{Priority: 12345}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("del missing rule: %v", err)
	}
	if _, err := ParseRule([]string{"from", "x"}, f); err == nil || !strings.Contains(err.Error(), `argument "x" is wrong`) {
		t.Errorf("bad rule: %v", err)
	}
	if _, err := ParseRule([]string{"frob", "1"}, f); err == nil || !strings.Contains(err.Error(), `unknown keyword "frob"`) {
		t.Errorf("bad rule: %v", err)
	}
}

func TestMultipath(t *testing.T) {
	f := testFIB(t)
	must(t, f.SetPort(2, "port2", 1500, true))
	must(t, f.AddAddress(2, ip("203.0.113.1"), 24))
	must(t, run(t, f, "add", "10.2.0.0/16 nexthop via 192.0.2.2 weight 1 nexthop via 198.51.100.2 weight 2 nexthop via 203.0.113.2 weight 1"))
	count := func() map[uint32]int {
		n := map[uint32]int{}
		var res Result
		for i := uint32(0); i < 40000; i++ {
			k := Key{Dst: ip("10.2.0.0") + i%65536, Src: ip("192.0.2.100") + i, Iif: 0, Oif: -1}
			k.Hash = FlowHash(k.Src, k.Dst)
			f.Lookup(&k, &res)
			if res.Err != nil || res.Nexthop == nil {
				t.Fatalf("lookup: %+v", res)
			}
			// Stable per flow.
			var again Result
			f.Lookup(&k, &again)
			if again.Nexthop != res.Nexthop {
				t.Fatal("flow moved between lookups")
			}
			if want := selectAddr(f.portSnap.Load(), res.Nexthop.Port, res.Nexthop.Gateway); res.Prefsrc != want {
				t.Fatalf("prefsrc %s, want %s", netaddr.IPv4String(res.Prefsrc), netaddr.IPv4String(want))
			}
			n[res.Nexthop.Gateway]++
		}
		return n
	}
	near := func(got int, share float64) bool { return math.Abs(float64(got)/40000-share) < 0.02 }
	n := count()
	if !near(n[ip("192.0.2.2")], 0.25) || !near(n[ip("198.51.100.2")], 0.5) || !near(n[ip("203.0.113.2")], 0.25) {
		t.Errorf("distribution %v", n)
	}
	// A dead nexthop's share moves to the others, in proportion.
	must(t, f.SetPort(1, "port1", 9000, false))
	n = count()
	if n[ip("198.51.100.2")] != 0 || !near(n[ip("192.0.2.2")], 0.5) || !near(n[ip("203.0.113.2")], 0.5) {
		t.Errorf("distribution with port1 down %v", n)
	}
	// Bounds follow the kernel's fib_rebalance.
	r := f.Routes(TableMain)[0]
	for _, x := range f.Routes(TableMain) {
		if x.Dst == ip("10.2.0.0") {
			r = x
		}
	}
	if b := r.Nexthops; b[0].UpperBound != 1<<29-1 || b[1].UpperBound != 3<<29-1 || b[2].UpperBound != 1<<31-1 {
		t.Errorf("bounds %d %d %d", b[0].UpperBound, b[1].UpperBound, b[2].UpperBound)
	}
	// With an output port only its nexthop is used.
	k := Key{Dst: ip("10.2.3.4"), Iif: -1, Oif: 2}
	var res Result
	f.LookupOutput(&k, &res)
	if res.Nexthop == nil || res.Nexthop.Gateway != ip("203.0.113.2") {
		t.Errorf("oif constraint: %+v", res)
	}
	// All dead: no route.
	must(t, f.SetPort(0, "port0", 1500, false))
	must(t, f.SetPort(2, "port2", 1500, false))
	k.Oif = -1
	f.LookupOutput(&k, &res)
	if !errors.Is(res.Err, syscall.ENETUNREACH) {
		t.Errorf("all dead: %+v", res)
	}
}

// A replaced route keeps the nexthop objects (and caches) of identical
// attributes and gets new ones otherwise.
func TestReplaceNexthopReuse(t *testing.T) {
	f := testFIB(t)
	must(t, run(t, f, "add", "10.0.0.0/8 via 192.0.2.2"))
	must(t, run(t, f, "add", "11.0.0.0/8 via 192.0.2.2"))
	rs := f.Routes(TableMain)
	a, b := rs[0], rs[1]
	if a.Nexthops[0] != b.Nexthops[0] || a.Nexthops[0].Cache == nil {
		t.Error("identical routes do not share nexthops")
	}
	must(t, run(t, f, "replace", "10.0.0.0/8 via 192.0.2.2 mtu 1400"))
	if f.Routes(TableMain)[0].Nexthops[0] == b.Nexthops[0] {
		t.Error("different attributes share nexthops")
	}
}
