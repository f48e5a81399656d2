package fib

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"ferry/netaddr"
)

var typeStrs = [...]string{"unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole",
	"unreachable", "prohibit", "throw"}

func (t Type) String() string {
	if int(t) < len(typeStrs) {
		return typeStrs[t]
	}
	return strconv.Itoa(int(t))
}

func (s Scope) String() string {
	switch s {
	case ScopeUniverse:
		return "global"
	case ScopeSite:
		return "site"
	case ScopeLink:
		return "link"
	case ScopeHost:
		return "host"
	case ScopeNowhere:
		return "nowhere"
	}
	return strconv.Itoa(int(s))
}

func protoName(p uint8) string {
	if n := protoByNum[p]; n != "" {
		return n
	}
	return strconv.Itoa(int(p))
}

// protoByNum is protoNames the other way round.
var protoByNum = func() (names [256]string) {
	for n, v := range protoNames {
		names[v] = n
	}
	return names
}()

func prefixStr(a uint32, plen uint8) string {
	switch {
	case plen == 0 && a == 0:
		return "default"
	case plen == 32:
		return netaddr.IPv4String(a)
	}
	return netaddr.IPv4String(a) + "/" + strconv.Itoa(int(plen))
}

func portStr(f *FIB, p int) string {
	if f != nil {
		if n := f.PortName(p); n != "" {
			return n
		}
	}
	return "if" + strconv.Itoa(p)
}

func portDown(f *FIB, p int) bool {
	return f != nil && p >= 0 && !f.portSnap.Load().alive(p)
}

// FormatRoute prints a route as `ip route show table X` does (without the
// trailing blank iproute2 leaves).
func FormatRoute(r *Route, f *FIB) string {
	return string(AppendRoute(nil, r, f, false))
}

// AppendRoute appends FormatRoute's line to b, with the route's table
// named (as `ip route show table all` does) when withTable is set. It
// formats a full table's routes without garbage per route.
func AppendRoute(b []byte, r *Route, f *FIB, withTable bool) []byte {
	if r.Type != Unicast {
		b = append(b, r.Type.String()...)
		b = append(b, ' ')
	}
	b = appendPrefix(b, r.Dst, r.Len)
	if r.Tos != 0 {
		b = append(b, " tos 0x"...)
		b = append(b, hexDigits[r.Tos>>4], hexDigits[r.Tos&15])
	}
	if len(r.Nexthops) == 1 {
		b = appendVia(b, r.Nexthops[0], f)
	}
	if withTable {
		b = append(b, " table "...)
		b = append(b, TableName(r.Table)...)
	}
	if r.Proto != ProtoBoot {
		b = append(b, " proto "...)
		b = append(b, protoName(r.Proto)...)
	}
	if r.Scope != ScopeUniverse {
		b = append(b, " scope "...)
		b = append(b, r.Scope.String()...)
	}
	if r.Prefsrc != 0 {
		b = append(b, " src "...)
		b = netaddr.AppendIPv4(b, r.Prefsrc)
	}
	if r.Priority != 0 {
		b = append(b, " metric "...)
		b = strconv.AppendUint(b, uint64(r.Priority), 10)
	}
	if len(r.Nexthops) == 1 {
		b = appendNhFlags(b, r.Nexthops[0], f)
	}
	if r.MTU != 0 {
		b = append(b, " mtu "...)
		if r.MTULock {
			b = append(b, "lock "...)
		}
		b = strconv.AppendUint(b, uint64(r.MTU), 10)
	}
	if len(r.Nexthops) > 1 {
		for _, nh := range r.Nexthops {
			b = append(b, "\n\tnexthop"...)
			b = appendVia(b, nh, f)
			b = append(b, " weight "...)
			b = strconv.AppendInt(b, int64(nh.Weight), 10)
			b = appendNhFlags(b, nh, f)
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendVia appends a nexthop's gateway and port.
func appendVia(b []byte, nh *Nexthop, f *FIB) []byte {
	if nh.Gateway != 0 {
		b = append(b, " via "...)
		b = netaddr.AppendIPv4(b, nh.Gateway)
	}
	if nh.Port >= 0 {
		b = append(b, " dev "...)
		b = append(b, portStr(f, nh.Port)...)
	}
	return b
}

func appendNhFlags(b []byte, nh *Nexthop, f *FIB) []byte {
	if nh.Onlink {
		b = append(b, " onlink"...)
	}
	if portDown(f, nh.Port) {
		b = append(b, " linkdown"...)
	}
	return b
}

// appendPrefix appends prefixStr's text.
func appendPrefix(b []byte, a uint32, plen uint8) []byte {
	if plen == 0 && a == 0 {
		return append(b, "default"...)
	}
	b = netaddr.AppendIPv4(b, a)
	if plen != 32 {
		b = append(b, '/')
		b = strconv.AppendUint(b, uint64(plen), 10)
	}
	return b
}

// FormatRule prints a rule as `ip rule show` does.
func FormatRule(r *Rule, f *FIB) string {
	var w []string
	if r.Invert {
		w = append(w, "not")
	}
	if r.SrcLen == 0 {
		w = append(w, "from", "all")
	} else {
		w = append(w, "from", prefixStr(r.Src, r.SrcLen))
	}
	if r.DstLen != 0 {
		w = append(w, "to", prefixStr(r.Dst, r.DstLen))
	}
	if r.Tos != 0 {
		w = append(w, "tos", fmt.Sprintf("0x%02x", r.Tos))
	}
	if r.Mark != 0 || r.MarkMask != 0 {
		if r.MarkMask == 0xffffffff {
			w = append(w, "fwmark", fmt.Sprintf("0x%x", r.Mark))
		} else {
			w = append(w, "fwmark", fmt.Sprintf("0x%x/0x%x", r.Mark, r.MarkMask))
		}
	}
	if r.IifName != "" {
		w = append(w, "iif", r.IifName)
		if _, ok := f.portIndexOK(r.IifName); !ok && r.IifName != "lo" {
			w = append(w, "[detached]")
		}
	}
	if r.OifName != "" {
		w = append(w, "oif", r.OifName)
		if _, ok := f.portIndexOK(r.OifName); !ok && r.OifName != "lo" {
			w = append(w, "[detached]")
		}
	}
	switch r.Action {
	case ActionLookup, 0:
		w = append(w, "lookup", TableName(r.Table))
	case ActionBlackhole:
		w = append(w, "blackhole")
	case ActionUnreachable:
		w = append(w, "unreachable")
	case ActionProhibit:
		w = append(w, "prohibit")
	}
	return strconv.FormatUint(uint64(r.Priority), 10) + ":\t" + strings.Join(w, " ")
}

func (f *FIB) portIndexOK(name string) (int, bool) {
	if f == nil {
		return 0, true // nothing to check against
	}
	return f.PortIndex(name)
}

// FormatGet prints a lookup result as `ip route get` does, without the
// trailing "uid 0" and cache lines. A failed lookup prints iproute2's error
// line.
func FormatGet(dst uint32, k *Key, res *Result, f *FIB) string {
	if res.Err != nil {
		return "RTNETLINK answers: " + errText(res.Err)
	}
	input := k.Iif >= 0
	var w []string
	if res.Type != Unicast && res.Type != 0 {
		w = append(w, res.Type.String())
	}
	w = append(w, netaddr.IPv4String(dst))
	if k.Src != 0 {
		w = append(w, "from", netaddr.IPv4String(k.Src))
	}
	nh := res.Nexthop
	if nh != nil && nh.Gateway != 0 && res.Type == Unicast {
		w = append(w, "via", netaddr.IPv4String(nh.Gateway))
	}
	switch {
	case res.Type == Local || input && res.Type == Broadcast:
		w = append(w, "dev", "lo") // the kernel delivers these through loopback
	case nh != nil && nh.Port >= 0:
		w = append(w, "dev", portStr(f, nh.Port))
	}
	if res.Table != TableMain && res.Table != TableUnspec {
		w = append(w, "table", TableName(res.Table))
	}
	if !input && k.Src == 0 && res.Prefsrc != 0 {
		w = append(w, "src", netaddr.IPv4String(res.Prefsrc))
	}
	if k.Mark != 0 {
		w = append(w, "mark", fmt.Sprint(k.Mark)) // ip prints the mark in decimal
	}
	if input {
		w = append(w, "iif", portStr(f, k.Iif))
	}
	return strings.Join(w, " ")
}

// errText is the kernel's text for an errno: Go's, capitalized.
func errText(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		s := e.Error()
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return err.Error()
}

// RouteJSON is a route as `ip -j route show` gives it: iproute2's objects
// and field names. withTable names a table other than main, as a listing
// of several tables does.
func RouteJSON(r *Route, f *FIB, withTable bool) map[string]any {
	o := map[string]any{"dst": prefixStr(r.Dst, r.Len), "flags": []string{}}
	if r.Type != Unicast {
		o["type"] = r.Type.String()
	}
	if r.Tos != 0 {
		o["tos"] = fmt.Sprintf("0x%02x", r.Tos)
	}
	hop := func(nh *Nexthop, into map[string]any) {
		if nh.Gateway != 0 {
			into["gateway"] = netaddr.IPv4String(nh.Gateway)
		}
		if nh.Port >= 0 {
			into["dev"] = portStr(f, nh.Port)
		}
		flags := []string{}
		if nh.Onlink {
			flags = append(flags, "onlink")
		}
		if nh.Port >= 0 && portDown(f, nh.Port) {
			flags = append(flags, "dead", "linkdown")
		}
		into["flags"] = flags
	}
	switch {
	case len(r.Nexthops) == 1:
		hop(r.Nexthops[0], o)
	case len(r.Nexthops) > 1:
		var hops []map[string]any
		for _, nh := range r.Nexthops {
			h := map[string]any{"weight": nh.Weight}
			hop(nh, h)
			hops = append(hops, h)
		}
		o["nexthops"] = hops
	}
	if withTable && r.Table != TableMain {
		o["table"] = TableName(r.Table)
	}
	if r.Proto != ProtoBoot {
		o["protocol"] = protoName(r.Proto)
	}
	if r.Scope != ScopeUniverse {
		o["scope"] = r.Scope.String()
	}
	if r.Priority != 0 {
		o["metric"] = r.Priority
	}
	if r.Prefsrc != 0 {
		o["prefsrc"] = netaddr.IPv4String(r.Prefsrc)
	}
	if r.MTU != 0 {
		m := map[string]any{"mtu": r.MTU}
		if r.MTULock {
			m["lock"] = []string{"mtu"}
		}
		o["metrics"] = []map[string]any{m}
	}
	return o
}

// RuleJSON is a rule as `ip -j rule show` gives it.
func RuleJSON(r *Rule, f *FIB) map[string]any {
	o := map[string]any{"priority": r.Priority, "src": "all"}
	if r.Invert {
		o["not"] = nil
	}
	if r.SrcLen != 0 {
		o["src"], o["srclen"] = netaddr.IPv4String(r.Src), r.SrcLen
	}
	if r.DstLen != 0 {
		o["dst"], o["dstlen"] = netaddr.IPv4String(r.Dst), r.DstLen
	}
	if r.Tos != 0 {
		o["tos"] = fmt.Sprintf("0x%02x", r.Tos)
	}
	if r.Mark != 0 || r.MarkMask != 0 {
		o["fwmark"] = fmt.Sprintf("0x%x", r.Mark)
		if r.MarkMask != 0xffffffff {
			o["fwmask"] = fmt.Sprintf("0x%x", r.MarkMask)
		}
	}
	if r.IifName != "" {
		o["iif"] = r.IifName
	}
	if r.OifName != "" {
		o["oif"] = r.OifName
	}
	switch r.Action {
	case ActionLookup, 0:
		o["table"] = TableName(r.Table)
	case ActionBlackhole:
		o["action"] = "blackhole"
	case ActionUnreachable:
		o["action"] = "unreachable"
	case ActionProhibit:
		o["action"] = "prohibit"
	}
	return o
}
