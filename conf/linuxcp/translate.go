package linuxcp

import (
	"net"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"ferry/fib"
	"ferry/netaddr"
)

// MaxNexthops is the most nexthops of one route the mirror takes, as the
// kernel's own limit for a multipath route.
const MaxNexthops = 256

// Why a kernel route is not mirrored.
const (
	skipFamily  = "not_ipv4"
	skipLocal   = "local_table"   // the kernel's local and broadcast routes
	skipKernel  = "proto_kernel"  // made by an address, which the port has too
	skipType    = "type"          // local, broadcast, anycast, multicast, nat
	skipForeign = "foreign_dev"   // a nexthop on an interface that is no port's
	skipTooMany = "many_nexthops" // more than MaxNexthops
	skipNoNH    = "no_nexthop"
)

// routeKey is what identifies a route in its table, as fib_find_alias
// matches (the kernel allows one route a key but with append).
type routeKey struct {
	table    uint32
	dst      uint32
	plen     uint8
	tos      uint8
	priority uint32
}

func keyOf(r *fib.Route) routeKey {
	return routeKey{r.Table, r.Dst, r.Len, r.Tos, r.Priority}
}

// ipv4 turns an address into host order; ok is false for anything but
// IPv4.
func ipv4(ip net.IP) (uint32, bool) {
	v4 := ip.To4()
	if v4 == nil {
		return 0, false
	}
	return netaddr.IPv4From4([4]byte(v4)), true
}

// translate makes the FIB route for kernel route kr, whose interfaces
// port maps to ports; reason says why there is none.
func translate(kr *netlink.Route, port func(ifindex int) (int, bool)) (r fib.Route, reason string) {
	if kr.Family != 0 && kr.Family != netlink.FAMILY_V4 {
		return r, skipFamily
	}
	r.Table = uint32(kr.Table)
	if r.Table == fib.TableLocal {
		return r, skipLocal
	}
	if kr.Protocol == unix.RTPROT_KERNEL {
		return r, skipKernel
	}
	if kr.Dst != nil {
		d, ok := ipv4(kr.Dst.IP)
		if !ok {
			return r, skipFamily
		}
		ones, bits := kr.Dst.Mask.Size()
		if bits != 32 {
			return r, skipFamily
		}
		r.Dst, r.Len = d, uint8(ones)
	}
	r.Type = fib.Type(kr.Type)
	switch r.Type {
	case fib.Unicast, fib.Blackhole, fib.Unreachable, fib.Prohibit, fib.Throw:
	default:
		return r, skipType
	}
	r.Tos = uint8(kr.Tos)
	r.Priority = uint32(kr.Priority)
	r.Proto = uint8(kr.Protocol)
	r.Scope = fib.Scope(kr.Scope)
	if kr.Src != nil {
		r.Prefsrc, _ = ipv4(kr.Src)
	}
	if kr.MTU > 0 {
		r.MTU, r.MTULock = uint32(kr.MTU), kr.MTULock
	}
	if r.Type != fib.Unicast {
		return r, ""
	}
	hop := func(ifindex int, gw net.IP, flags, hops int) (*fib.Nexthop, string) {
		p, ok := port(ifindex)
		if !ok {
			return nil, skipForeign
		}
		nh := &fib.Nexthop{Port: p, Weight: hops + 1, Onlink: flags&unix.RTNH_F_ONLINK != 0}
		if gw != nil {
			if nh.Gateway, ok = ipv4(gw); !ok {
				return nil, skipFamily
			}
		}
		return nh, ""
	}
	if len(kr.MultiPath) > 0 {
		if len(kr.MultiPath) > MaxNexthops {
			return r, skipTooMany
		}
		for _, m := range kr.MultiPath {
			nh, why := hop(m.LinkIndex, m.Gw, m.Flags, m.Hops)
			if nh == nil {
				return r, why
			}
			r.Nexthops = append(r.Nexthops, nh)
		}
		return r, ""
	}
	if kr.LinkIndex == 0 {
		return r, skipNoNH
	}
	nh, why := hop(kr.LinkIndex, kr.Gw, kr.Flags, 0)
	if nh == nil {
		return r, why
	}
	nh.Weight = 1
	r.Nexthops = []*fib.Nexthop{nh}
	return r, ""
}

// fingerprint sums up what a route of a key holds, so that the mirror
// remembers 8 bytes a route, not the route: a change of any attribute
// changes it (collisions aside, which a resync would not see).
func fingerprint(r *fib.Route) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		for i := 0; i < 8; i++ {
			h ^= v & 0xff
			h *= prime
			v >>= 8
		}
	}
	mix(uint64(r.Type) | uint64(r.Proto)<<8 | uint64(r.Scope)<<16 | uint64(r.Prefsrc)<<32)
	mtu := uint64(r.MTU)
	if r.MTULock {
		mtu |= 1 << 40
	}
	mix(mtu)
	for _, nh := range r.Nexthops {
		on := uint64(0)
		if nh.Onlink {
			on = 1
		}
		mix(uint64(nh.Gateway) | uint64(uint16(nh.Port))<<32 | on<<48)
		mix(uint64(nh.Weight))
	}
	return h | 1 // never 0
}

// ruleArgs writes kernel rule kr as 'ip rule' arguments ferry parses; ok
// is false for rules it cannot take (another family, interfaces that are
// no port's, goto, nat).
func ruleArgs(kr *netlink.Rule, portOf func(iface string) (string, bool)) ([]string, bool) {
	if kr.Family != 0 && kr.Family != netlink.FAMILY_V4 {
		return nil, false
	}
	var a []string
	if kr.Invert {
		a = append(a, "not")
	}
	for _, sel := range []struct {
		word string
		n    *net.IPNet
	}{{"from", kr.Src}, {"to", kr.Dst}} {
		if sel.n == nil {
			continue
		}
		if _, ok := ipv4(sel.n.IP); !ok {
			return nil, false
		}
		a = append(a, sel.word, sel.n.String())
	}
	if kr.Tos != 0 {
		a = append(a, "tos", strconv.Itoa(int(kr.Tos)))
	}
	if kr.Mark != 0 || (kr.Mask != nil && *kr.Mask != 0) {
		m := "0x" + strconv.FormatUint(uint64(kr.Mark), 16)
		if kr.Mask != nil {
			m += "/0x" + strconv.FormatUint(uint64(*kr.Mask), 16)
		}
		a = append(a, "fwmark", m)
	}
	for _, sel := range []struct{ word, name string }{{"iif", kr.IifName}, {"oif", kr.OifName}} {
		if sel.name == "" {
			continue
		}
		name := sel.name
		if name != "lo" {
			p, ok := portOf(name)
			if !ok {
				return nil, false
			}
			name = p
		}
		a = append(a, sel.word, name)
	}
	if kr.Goto >= 0 || kr.SuppressPrefixlen > 0 || kr.SuppressIfgroup > 0 || kr.Dport != nil || kr.Sport != nil || kr.IPProto != 0 || kr.UIDRange != nil {
		return nil, false
	}
	switch kr.Type {
	case 0, unix.FR_ACT_TO_TBL:
		a = append(a, "lookup", strconv.Itoa(kr.Table))
	case unix.FR_ACT_BLACKHOLE:
		a = append(a, "blackhole")
	case unix.FR_ACT_UNREACHABLE:
		a = append(a, "unreachable")
	case unix.FR_ACT_PROHIBIT:
		a = append(a, "prohibit")
	default:
		return nil, false
	}
	return append(a, "priority", strconv.Itoa(kr.Priority)), true
}

// defaultRule reports whether a kernel rule is one of the three every
// table set starts with, which ferry has too.
func defaultRule(kr *netlink.Rule) bool {
	if kr.Src != nil || kr.Dst != nil || kr.IifName != "" || kr.OifName != "" || kr.Mark != 0 || kr.Invert || kr.Tos != 0 {
		return false
	}
	switch {
	case kr.Priority == 0 && kr.Table == fib.TableLocal,
		kr.Priority == 32766 && kr.Table == fib.TableMain,
		kr.Priority == 32767 && kr.Table == fib.TableDefault:
		return true
	}
	return false
}
