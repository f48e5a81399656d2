package fib

import (
	"fmt"
	"strconv"
	"strings"
)

var typeNames = map[string]Type{
	"unicast": Unicast, "local": Local, "broadcast": Broadcast, "anycast": Anycast, "multicast": Multicast,
	"blackhole": Blackhole, "unreachable": Unreachable, "prohibit": Prohibit, "throw": Throw,
}

var scopeNames = map[string]Scope{
	"global": ScopeUniverse, "universe": ScopeUniverse, "site": ScopeSite, "link": ScopeLink,
	"host": ScopeHost, "nowhere": ScopeNowhere,
}

// protoNames are iproute2's rt_protos.
var protoNames = map[string]uint8{
	"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9, "mrt": 10,
	"zebra": 11, "bird": 12, "dnrouted": 13, "xorp": 14, "ntk": 15, "dhcp": 16, "keepalived": 18,
	"babel": 42, "openr": 99, "bgp": 186, "isis": 187, "ospf": 188, "rip": 189, "eigrp": 192,
}

// ParseProto reads a route protocol as iproute2 names it (bgp, bird,
// zebra, ...) or as a number.
func ParseProto(s string) (uint8, error) {
	if n, ok := protoNames[s]; ok {
		return n, nil
	}
	n, err := strconv.ParseUint(s, 0, 8)
	if err != nil {
		return 0, fmt.Errorf("argument %q is wrong: \"protocol\" value is invalid", s)
	}
	return uint8(n), nil
}

// parser walks the arguments of one command and builds its errors.
type parser struct {
	what string // "route" or "rule"
	line string
	args []string
	i    int
}

func (p *parser) more() bool { return p.i < len(p.args) }

func (p *parser) next() string {
	s := p.args[p.i]
	p.i++
	return s
}

// arg returns the value after keyword kw.
func (p *parser) arg(kw string) (string, error) {
	if !p.more() {
		return "", p.errf("command line is not complete: %q needs an argument", kw)
	}
	return p.next(), nil
}

func (p *parser) errf(format string, a ...any) error {
	return fmt.Errorf("%s %q: %s", p.what, p.line, fmt.Sprintf(format, a...))
}

// wrong is iproute2's invarg: `argument "x" is wrong: why`.
func (p *parser) wrong(tok, why string) error {
	return p.errf("argument %q is wrong: %s", tok, why)
}

// parseAddr reads a dotted quad; like iproute2 it accepts fewer than four
// parts for a prefix ("10/8").
func parseAddr(s string, partial bool) (uint32, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 || len(parts) < 4 && !partial || s == "" {
		return 0, false
	}
	var a uint32
	for i, part := range parts {
		if part == "" || len(part) > 3 {
			return 0, false
		}
		v, err := strconv.ParseUint(part, 10, 8)
		if err != nil {
			return 0, false
		}
		a |= uint32(v) << (24 - 8*uint(i))
	}
	return a, true
}

// ParsePrefix reads "default", "A/len", "A" (a /32) or "10/8".
func ParsePrefix(s string) (Prefix, error) {
	switch s {
	case "default", "all", "any":
		return Prefix{}, nil
	}
	addr, plen := s, "32"
	if i := strings.IndexByte(s, '/'); i >= 0 {
		addr, plen = s[:i], s[i+1:]
	}
	a, ok := parseAddr(addr, true)
	n, err := strconv.ParseUint(plen, 10, 8)
	if !ok || err != nil || n > 32 {
		return Prefix{}, fmt.Errorf("any valid prefix is expected rather than %q", s)
	}
	return Prefix{a, uint8(n)}, nil
}

// ParseAddr reads a dotted-quad IPv4 address.
func ParseAddr(s string) (uint32, error) {
	a, ok := parseAddr(s, false)
	if !ok {
		return 0, fmt.Errorf("inet address is expected rather than %q", s)
	}
	return a, nil
}

func parseTable(s string) (uint32, bool) {
	switch s {
	case "local":
		return TableLocal, true
	case "main":
		return TableMain, true
	case "default":
		return TableDefault, true
	}
	v, err := strconv.ParseUint(s, 0, 32)
	return uint32(v), err == nil && v != 0
}

// parseTos reads a dsfield as iproute2 does: hexadecimal, "0x" optional.
func parseTos(s string) (uint8, bool) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 8)
	return uint8(v), err == nil
}

func parseU32(s string) (uint32, bool) {
	v, err := strconv.ParseUint(s, 0, 32)
	return uint32(v), err == nil
}

func (p *parser) port(f *FIB, name string) (int, error) {
	if f == nil {
		return -1, p.errf("cannot find device %q: no ports known", name)
	}
	i, ok := f.PortIndex(name)
	if !ok {
		return -1, p.errf("cannot find device %q", name)
	}
	return i, nil
}

// ParseRoute reads the arguments of `ip route add|del|replace|...` after the
// verb. Ports are resolved through f.
func ParseRoute(args []string, f *FIB) (Route, error) {
	p := &parser{what: "route", line: strings.Join(args, " "), args: args}
	r := Route{Type: Unicast, Proto: ProtoBoot, given: givenParsed}
	nh := Nexthop{Port: -1}
	var nhs []*Nexthop
	haveDst, single, multi := false, false, false
	for p.more() {
		tok := p.next()
		var err error
		switch tok {
		case "via", "src", "dev", "oif", "metric", "priority", "preference", "tos", "dsfield", "scope",
			"proto", "protocol", "mtu", "table", "weight":
			if multi && tok != "weight" && tok != "via" && tok != "dev" && tok != "oif" {
				return r, p.errf("%q after a nexthop: route attributes come before the first \"nexthop\"", tok)
			}
		}
		switch tok {
		case "to":
			continue // the prefix follows
		case "via":
			v, err2 := p.arg(tok)
			if err2 != nil {
				return r, err2
			}
			if v == "inet" && p.more() {
				v = p.next()
			}
			a, ok := parseAddr(v, false)
			if !ok {
				return r, p.wrong(v, "inet address is expected")
			}
			cur := &nh
			if multi {
				cur = nhs[len(nhs)-1]
			} else {
				single = true
			}
			cur.Gateway = a
		case "dev", "oif":
			v, err2 := p.arg(tok)
			if err2 != nil {
				return r, err2
			}
			i, err2 := p.port(f, v)
			if err2 != nil {
				return r, err2
			}
			if multi {
				nhs[len(nhs)-1].Port = i
			} else {
				nh.Port, single = i, true
			}
		case "onlink":
			if multi {
				nhs[len(nhs)-1].Onlink = true
			} else {
				nh.Onlink = true
			}
		case "weight":
			v, err2 := p.arg(tok)
			if err2 != nil {
				return r, err2
			}
			w, err2 := strconv.Atoi(v)
			if err2 != nil || w < 1 || w > 256 || !multi {
				return r, p.wrong(v, "\"weight\" is invalid")
			}
			nhs[len(nhs)-1].Weight = w
		case "nexthop":
			if single {
				return r, p.errf("\"nexthop\" after \"via\" or \"dev\": give every path as a nexthop")
			}
			multi = true
			nhs = append(nhs, &Nexthop{Port: -1, Weight: 1})
		case "src":
			var v string
			if v, err = p.arg(tok); err != nil {
				return r, err
			}
			a, ok := parseAddr(v, false)
			if !ok {
				return r, p.wrong(v, "inet address is expected")
			}
			r.Prefsrc = a
		case "metric", "priority", "preference":
			var v string
			if v, err = p.arg(tok); err != nil {
				return r, err
			}
			n, ok := parseU32(v)
			if !ok {
				return r, p.wrong(v, "\"metric\" value is invalid")
			}
			r.Priority = n
			r.given |= givenPriority
		case "tos", "dsfield":
			var v string
			if v, err = p.arg(tok); err != nil {
				return r, err
			}
			t, ok := parseTos(v)
			if !ok {
				return r, p.wrong(v, "\"tos\" value is invalid")
			}
			r.Tos = t
			r.given |= givenTos
		case "scope":
			var v string
			if v, err = p.arg(tok); err != nil {
				return r, err
			}
			s, ok := scopeNames[v]
			if !ok {
				n, err2 := strconv.ParseUint(v, 0, 8)
				if err2 != nil {
					return r, p.wrong(v, "invalid \"scope\" value")
				}
				s = Scope(n)
			}
			r.Scope = s
			r.given |= givenScope
		case "proto", "protocol":
			var v string
			if v, err = p.arg(tok); err != nil {
				return r, err
			}
			n, ok := protoNames[v]
			if !ok {
				x, err2 := strconv.ParseUint(v, 0, 8)
				if err2 != nil {
					return r, p.wrong(v, "\"protocol\" value is invalid")
				}
				n = uint8(x)
			}
			r.Proto = n
			r.given |= givenProto
		case "mtu":
			var v string
			if v, err = p.arg(tok); err != nil {
				return r, err
			}
			if v == "lock" {
				r.MTULock = true
				if v, err = p.arg(tok); err != nil {
					return r, err
				}
			}
			n, ok := parseU32(v)
			if !ok || n == 0 {
				return r, p.wrong(v, "\"mtu\" value is invalid")
			}
			r.MTU = n
		case "table":
			var v string
			if v, err = p.arg(tok); err != nil {
				return r, err
			}
			t, ok := parseTable(v)
			if !ok {
				return r, p.wrong(v, "\"table\" value is invalid")
			}
			r.Table = t
			r.given |= givenTable
		default:
			if t, ok := typeNames[tok]; ok && p.more() && !haveDst {
				r.Type = t
				r.given |= givenType
				tok = p.next()
			}
			if haveDst {
				return r, p.errf("either \"to\" is duplicate, or %q is a garbage", tok)
			}
			pf, err2 := ParsePrefix(tok)
			if err2 != nil {
				return r, p.errf("%s", err2)
			}
			if pf.Addr&^mask(pf.Len) != 0 {
				return r, p.errf("invalid prefix for given prefix length: %q", tok)
			}
			r.Dst, r.Len, haveDst = pf.Addr, pf.Len, true
		}
	}
	if !haveDst {
		return r, p.errf("no destination prefix")
	}
	switch {
	case multi:
		r.Nexthops = nhs
	case single || nh.Onlink:
		nh.Weight = 1
		r.Nexthops = []*Nexthop{&nh}
	}
	if r.given&givenTable == 0 {
		r.Table = TableMain
		if r.Type == Local || r.Type == Broadcast || r.Type == Anycast {
			r.Table = TableLocal
		}
	}
	// iproute2's default scope.
	if r.given&givenScope == 0 {
		switch {
		case r.Type == Local:
			r.Scope = ScopeHost
		case r.Type == Broadcast || r.Type == Multicast || r.Type == Anycast:
			r.Scope = ScopeLink
		case r.Type == Unicast && !multi && nh.Gateway == 0:
			r.Scope = ScopeLink
		}
	}
	if len(r.Nexthops) == 1 && r.Nexthops[0].Gateway == 0 && r.Nexthops[0].Port < 0 && !isReject(r.Type) {
		return r, p.errf("nexthop needs a gateway (via) or a device (dev)")
	}
	return r, nil
}

// ParseRule reads the arguments of `ip rule add|del` after the verb.
func ParseRule(args []string, f *FIB) (Rule, error) {
	p := &parser{what: "rule", line: strings.Join(args, " "), args: args}
	var r Rule
	for p.more() {
		tok := p.next()
		switch tok {
		case "not":
			r.Invert = true
			continue
		case "blackhole":
			r.Action = ActionBlackhole
			continue
		case "unreachable":
			r.Action = ActionUnreachable
			continue
		case "prohibit":
			r.Action = ActionProhibit
			continue
		}
		v, err := p.arg(tok)
		if err != nil {
			return r, err
		}
		switch tok {
		case "from", "to":
			pf, err := ParsePrefix(v)
			if err != nil {
				return r, p.wrong(v, "\""+tok+"\" prefix is invalid")
			}
			pf.Addr &= mask(pf.Len)
			if tok == "from" {
				r.Src, r.SrcLen = pf.Addr, pf.Len
			} else {
				r.Dst, r.DstLen = pf.Addr, pf.Len
			}
		case "priority", "pref", "order":
			n, ok := parseU32(v)
			if !ok {
				return r, p.wrong(v, "invalid priority")
			}
			r.Priority, r.prioSet = n, true
		case "tos", "dsfield":
			t, ok := parseTos(v)
			if !ok {
				return r, p.wrong(v, "TOS value is invalid")
			}
			r.Tos = t
		case "fwmark":
			m, mk := v, "0xffffffff"
			if i := strings.IndexByte(v, '/'); i >= 0 {
				m, mk = v[:i], v[i+1:]
			}
			mv, ok1 := parseU32(m)
			kv, ok2 := parseU32(mk)
			if !ok1 || !ok2 {
				return r, p.wrong(v, "fwmark value is invalid")
			}
			r.Mark, r.MarkMask = mv, kv
		case "iif", "dev":
			r.IifName = v
		case "oif":
			r.OifName = v
		case "table", "lookup":
			t, ok := parseTable(v)
			if !ok {
				return r, p.wrong(v, "invalid table ID")
			}
			r.Table = t
			r.Action = ActionLookup
		case "type":
			switch v {
			case "blackhole":
				r.Action = ActionBlackhole
			case "unreachable":
				r.Action = ActionUnreachable
			case "prohibit":
				r.Action = ActionProhibit
			case "unicast":
				r.Action = ActionLookup
			default:
				return r, p.wrong(v, "unsupported rule type")
			}
		default:
			return r, p.errf("unknown keyword %q", tok)
		}
	}
	_ = f
	return r, nil
}
