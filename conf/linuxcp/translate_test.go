package linuxcp

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ferry/fib"
)

func cidr(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Kernel interfaces 10 and 11 are ports 0 and 1; 12 is some other device.
func testPort(ifindex int) (int, bool) {
	switch ifindex {
	case 10:
		return 0, true
	case 11:
		return 1, true
	}
	return 0, false
}

func TestTranslate(t *testing.T) {
	gw := net.ParseIP("198.51.100.2")
	for _, tc := range []struct {
		name string
		kr   netlink.Route
		skip string
		want func(r *fib.Route) bool
	}{
		{"bgp unicast", netlink.Route{Dst: cidr("10.1.0.0/16"), Gw: gw, LinkIndex: 11, Table: 254, Type: unix.RTN_UNICAST, Protocol: 186, Priority: 20},
			"", func(r *fib.Route) bool {
				return r.Dst == 0x0a010000 && r.Len == 16 && r.Proto == 186 && r.Priority == 20 && len(r.Nexthops) == 1 &&
					r.Nexthops[0].Port == 1 && r.Nexthops[0].Gateway == 0xc6336402 && r.Nexthops[0].Weight == 1
			}},
		{"default route", netlink.Route{Gw: gw, LinkIndex: 11, Table: 254, Type: unix.RTN_UNICAST, Protocol: unix.RTPROT_STATIC},
			"", func(r *fib.Route) bool { return r.Dst == 0 && r.Len == 0 && r.Proto == unix.RTPROT_STATIC }},
		{"multipath with weights", netlink.Route{Dst: cidr("10.2.0.0/16"), Table: 100, Type: unix.RTN_UNICAST,
			MultiPath: []*netlink.NexthopInfo{{LinkIndex: 10, Gw: net.ParseIP("192.0.2.2"), Hops: 1}, {LinkIndex: 11, Gw: gw, Flags: unix.RTNH_F_ONLINK}}},
			"", func(r *fib.Route) bool {
				return r.Table == 100 && len(r.Nexthops) == 2 && r.Nexthops[0].Weight == 2 && r.Nexthops[0].Port == 0 &&
					r.Nexthops[1].Weight == 1 && r.Nexthops[1].Onlink
			}},
		{"blackhole", netlink.Route{Dst: cidr("10.3.0.0/16"), Table: 254, Type: unix.RTN_BLACKHOLE},
			"", func(r *fib.Route) bool { return r.Type == fib.Blackhole && len(r.Nexthops) == 0 }},
		{"prohibit", netlink.Route{Dst: cidr("10.4.0.0/16"), Table: 254, Type: unix.RTN_PROHIBIT}, "", func(r *fib.Route) bool { return r.Type == fib.Prohibit }},
		{"other device", netlink.Route{Dst: cidr("10.5.0.0/16"), Gw: gw, LinkIndex: 12, Table: 254, Type: unix.RTN_UNICAST}, skipForeign, nil},
		{"one nexthop elsewhere", netlink.Route{Dst: cidr("10.6.0.0/16"), Table: 254, Type: unix.RTN_UNICAST,
			MultiPath: []*netlink.NexthopInfo{{LinkIndex: 10}, {LinkIndex: 12}}}, skipForeign, nil},
		{"local table", netlink.Route{Dst: cidr("192.0.2.1/32"), LinkIndex: 10, Table: 255, Type: unix.RTN_LOCAL}, skipLocal, nil},
		{"connected", netlink.Route{Dst: cidr("192.0.2.0/24"), LinkIndex: 10, Table: 254, Type: unix.RTN_UNICAST, Protocol: unix.RTPROT_KERNEL}, skipKernel, nil},
		{"multicast type", netlink.Route{Dst: cidr("224.0.0.0/4"), LinkIndex: 10, Table: 254, Type: unix.RTN_MULTICAST}, skipType, nil},
		{"ipv6", netlink.Route{Dst: cidr("2001:db8::/32"), LinkIndex: 10, Table: 254, Type: unix.RTN_UNICAST, Family: netlink.FAMILY_V6}, skipFamily, nil},
	} {
		r, why := translate(&tc.kr, testPort)
		if why != tc.skip {
			t.Errorf("%s: skipped for %q, want %q", tc.name, why, tc.skip)
			continue
		}
		if tc.want != nil && !tc.want(&r) {
			t.Errorf("%s: translated to %+v", tc.name, r)
		}
	}
	many := netlink.Route{Dst: cidr("10.7.0.0/16"), Table: 254, Type: unix.RTN_UNICAST}
	for i := 0; i <= MaxNexthops; i++ {
		many.MultiPath = append(many.MultiPath, &netlink.NexthopInfo{LinkIndex: 10, Gw: gw})
	}
	if _, why := translate(&many, testPort); why != skipTooMany {
		t.Errorf("%d nexthops: skipped for %q", len(many.MultiPath), why)
	}
}

func TestRuleArgs(t *testing.T) {
	port := func(iface string) (string, bool) { return map[string]string{"k0": "port0"}[iface], iface == "k0" }
	mask := uint32(0xff)
	r := netlink.NewRule()
	r.Src, r.Dst, r.Table, r.Priority, r.IifName, r.Mark, r.Mask = cidr("10.1.0.0/16"), cidr("10.2.0.0/16"), 100, 200, "k0", 7, &mask
	args, ok := ruleArgs(r, port)
	want := "from 10.1.0.0/16 to 10.2.0.0/16 fwmark 0x7/0xff iif port0 lookup 100 priority 200"
	if !ok || join(args) != want {
		t.Fatalf("rule args %q, want %q", join(args), want)
	}
	r.IifName = "eth9"
	if _, ok := ruleArgs(r, port); ok {
		t.Fatal("a rule on a device that is no port's was taken")
	}
	d := netlink.NewRule()
	d.Priority, d.Table = 32766, 254
	if !defaultRule(d) {
		t.Fatal("the main rule is not a default one")
	}
}

func join(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}
