package fib

import (
	"fmt"
	"strconv"
	"strings"

	"ferry/netaddr"
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
	return fmt.Errorf("%s %q: %s", p.what, strings.Join(p.args, " "), fmt.Sprintf(format, a...))
}

// wrong is iproute2's invarg: `argument "x" is wrong: why`.
func (p *parser) wrong(tok, why string) error {
	return p.errf("argument %q is wrong: %s", tok, why)
}

// parseAddr reads a dotted quad; like iproute2 it accepts fewer than four
// parts for a prefix ("10/8").
func parseAddr(s string, partial bool) (uint32, bool) {
	if s == "" {
		return 0, false
	}
	var a uint32
	i := 0
	for rest, more := s, true; more; i++ {
		var part string
		part, rest, more = strings.Cut(rest, ".")
		if i == 4 || part == "" || len(part) > 3 {
			return 0, false
		}
		v, err := strconv.ParseUint(part, 10, 8)
		if err != nil {
			return 0, false
		}
		a |= uint32(v) << (24 - 8*uint(i))
	}
	return a, i == 4 || partial
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
	return Prefix{Addr: a, Len: uint8(n)}, nil
}

// ParseAddr reads a dotted-quad IPv4 address.
func ParseAddr(s string) (uint32, error) {
	a, ok := parseAddr(s, false)
	if !ok {
		return 0, fmt.Errorf("inet address is expected rather than %q", s)
	}
	return a, nil
}

// ParseTable reads a table as iproute2 names it: local, main, default or a
// number other than 0.
func ParseTable(s string) (uint32, bool) {
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

// routeParser holds what ParseRoute has read so far.
type routeParser struct {
	parser
	f       *FIB
	r       Route
	nh      Nexthop    // the only path, when no "nexthop" clause is given
	nhs     []*Nexthop // one per "nexthop" clause
	haveDst bool
	single  bool // "via" or "dev" set nh
	multi   bool // a "nexthop" clause was seen
}

// ParseRoute reads the arguments of `ip route add|del|replace|...` after the
// verb. Ports are resolved through f.
func ParseRoute(args []string, f *FIB) (Route, error) {
	rp := routeParser{
		parser: parser{what: "route", args: args},
		f:      f,
		r:      Route{Type: Unicast, Proto: ProtoBoot, given: givenParsed},
		nh:     Nexthop{Port: -1},
	}
	for rp.more() {
		if err := rp.word(rp.next()); err != nil {
			return rp.r, err
		}
	}
	return rp.finish()
}

// word reads one keyword and its arguments.
func (rp *routeParser) word(tok string) error {
	switch tok {
	case "to":
		return nil // the prefix follows
	case "via", "dev", "oif", "onlink", "weight", "nexthop":
		return rp.nexthopWord(tok)
	case "src", "metric", "priority", "preference", "tos", "dsfield", "scope", "proto", "protocol", "mtu", "table":
		if rp.multi {
			return rp.errf("%q after a nexthop: route attributes come before the first \"nexthop\"", tok)
		}
		return rp.attribute(tok)
	}
	return rp.destination(tok)
}

// path is the nexthop the words being read describe: the last "nexthop"
// clause's, or the route's only one.
func (rp *routeParser) path() *Nexthop {
	if rp.multi {
		return rp.nhs[len(rp.nhs)-1]
	}
	return &rp.nh
}

// nexthopWord reads a word of a path: a "nexthop" clause or the only path.
func (rp *routeParser) nexthopWord(tok string) error {
	switch tok {
	case "nexthop":
		if rp.single {
			return rp.errf("\"nexthop\" after \"via\" or \"dev\": give every path as a nexthop")
		}
		rp.multi = true
		rp.nhs = append(rp.nhs, &Nexthop{Port: -1, Weight: 1})
		return nil
	case "onlink":
		rp.path().Onlink = true
		return nil
	}
	v, err := rp.arg(tok)
	if err != nil {
		return err
	}
	switch tok {
	case "via":
		if v == "inet" && rp.more() {
			v = rp.next()
		}
		a, ok := parseAddr(v, false)
		if !ok {
			return rp.wrong(v, "inet address is expected")
		}
		rp.path().Gateway = a
		rp.single = !rp.multi
	case "dev", "oif":
		i, err := rp.port(rp.f, v)
		if err != nil {
			return err
		}
		rp.path().Port = i
		rp.single = !rp.multi
	case "weight":
		w, err := strconv.Atoi(v)
		if err != nil || w < 1 || w > 256 || !rp.multi {
			return rp.wrong(v, "\"weight\" is invalid")
		}
		rp.path().Weight = w
	}
	return nil
}

// attribute reads a word that sets the route rather than one of its paths.
func (rp *routeParser) attribute(tok string) error {
	v, err := rp.arg(tok)
	if err != nil {
		return err
	}
	r := &rp.r
	switch tok {
	case "src":
		a, ok := parseAddr(v, false)
		if !ok {
			return rp.wrong(v, "inet address is expected")
		}
		r.Prefsrc = a
	case "metric", "priority", "preference":
		n, ok := parseU32(v)
		if !ok {
			return rp.wrong(v, "\"metric\" value is invalid")
		}
		r.Priority = n
		r.given |= givenPriority
	case "tos", "dsfield":
		t, ok := parseTos(v)
		if !ok {
			return rp.wrong(v, "\"tos\" value is invalid")
		}
		r.Tos = t
		r.given |= givenTos
	case "scope":
		s, ok := scopeNames[v]
		if !ok {
			n, err := strconv.ParseUint(v, 0, 8)
			if err != nil {
				return rp.wrong(v, "invalid \"scope\" value")
			}
			s = Scope(n)
		}
		r.Scope = s
		r.given |= givenScope
	case "proto", "protocol":
		n, ok := protoNames[v]
		if !ok {
			x, err := strconv.ParseUint(v, 0, 8)
			if err != nil {
				return rp.wrong(v, "\"protocol\" value is invalid")
			}
			n = uint8(x)
		}
		r.Proto = n
		r.given |= givenProto
	case "mtu":
		if v == "lock" {
			r.MTULock = true
			if v, err = rp.arg(tok); err != nil {
				return err
			}
		}
		n, ok := parseU32(v)
		if !ok || n == 0 {
			return rp.wrong(v, "\"mtu\" value is invalid")
		}
		r.MTU = n
	case "table":
		t, ok := ParseTable(v)
		if !ok {
			return rp.wrong(v, "\"table\" value is invalid")
		}
		r.Table = t
		r.given |= givenTable
	}
	return nil
}

// destination reads the prefix, with the route type before it if given.
func (rp *routeParser) destination(tok string) error {
	if t, ok := typeNames[tok]; ok && rp.more() && !rp.haveDst {
		rp.r.Type = t
		rp.r.given |= givenType
		tok = rp.next()
	}
	if rp.haveDst {
		return rp.errf("either \"to\" is duplicate, or %q is a garbage", tok)
	}
	pf, err := ParsePrefix(tok)
	if err != nil {
		return rp.errf("%s", err)
	}
	if pf.Addr&^netaddr.Mask(pf.Len) != 0 {
		return rp.errf("invalid prefix for given prefix length: %q", tok)
	}
	rp.r.Dst, rp.r.Len, rp.haveDst = pf.Addr, pf.Len, true
	return nil
}

// finish attaches the paths, fills in iproute2's defaults for what was not
// given, and checks the route as a whole.
func (rp *routeParser) finish() (Route, error) {
	r := &rp.r
	if !rp.haveDst {
		return *r, rp.errf("no destination prefix")
	}
	switch {
	case rp.multi:
		r.Nexthops = rp.nhs
	case rp.single || rp.nh.Onlink:
		nh := rp.nh
		nh.Weight = 1
		r.Nexthops = []*Nexthop{&nh}
	}
	if r.given&givenTable == 0 {
		r.Table = TableMain
		if r.Type == Local || r.Type == Broadcast || r.Type == Anycast {
			r.Table = TableLocal
		}
	}
	if r.given&givenScope == 0 {
		switch {
		case r.Type == Local:
			r.Scope = ScopeHost
		case r.Type == Broadcast || r.Type == Multicast || r.Type == Anycast:
			r.Scope = ScopeLink
		case r.Type == Unicast && !rp.multi && rp.nh.Gateway == 0:
			r.Scope = ScopeLink
		}
	}
	if len(r.Nexthops) == 1 && r.Nexthops[0].Gateway == 0 && r.Nexthops[0].Port < 0 && !isReject(r.Type) {
		return *r, rp.errf("nexthop needs a gateway (via) or a device (dev)")
	}
	return *r, nil
}

// ParseRule reads the arguments of `ip rule add|del` after the verb.
func ParseRule(args []string, f *FIB) (Rule, error) {
	p := &parser{what: "rule", args: args}
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
			pf.Addr &= netaddr.Mask(pf.Len)
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
			t, ok := ParseTable(v)
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
