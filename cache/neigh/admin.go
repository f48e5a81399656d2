package neigh

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"ferry/netaddr"
)

// Cmd is an ip neigh command.
type Cmd uint8

const (
	CmdShow    Cmd = iota // ip neigh show
	CmdAdd                // create; fails if present (NLM_F_CREATE|NLM_F_EXCL)
	CmdChange             // modify; fails if absent (NLM_F_REPLACE)
	CmdReplace            // create or modify (NLM_F_CREATE|NLM_F_REPLACE)
	CmdDel                // delete
	CmdFlush              // delete every entry matching the filter
)

var cmdNames = [...]string{"show", "add", "change", "replace", "del", "flush"}

func (c Cmd) String() string {
	if int(c) < len(cmdNames) {
		return cmdNames[c]
	}
	return "cmd(" + strconv.Itoa(int(c)) + ")"
}

// StateNoneBit selects NONE entries in a filter mask (iproute2's 0x100).
const StateNoneBit = 0x100

// Request is one parsed ip neigh command.
type Request struct {
	Cmd    Cmd
	Port   int // port index; -1 = every port (show/flush only)
	IP     uint32
	MAC    netaddr.MAC
	HasMAC bool
	State  State // add/change/replace; ParseNeigh defaults it to PERMANENT
	// Show/flush filter.
	Prefix    uint32
	PrefixLen int    // 0 with Prefix 0 matches everything
	StateMask uint32 // State bits plus StateNoneBit; 0 = the command's default
}

// defaultMask is iproute2's: show hides NOARP; flush spares PERMANENT and
// NOARP, and FAILED (deleting it would only recreate work).
func (r *Request) mask() uint32 {
	if r.StateMask != 0 {
		if r.Cmd == CmdFlush {
			return r.StateMask &^ uint32(Failed)
		}
		return r.StateMask
	}
	if r.Cmd == CmdFlush {
		return ^uint32(Permanent|NoARP|Failed) & (0xff | StateNoneBit)
	}
	return 0xff &^ uint32(NoARP)
}

func (r *Request) matches(e *Entry) bool {
	if r.Port >= 0 && int(e.port) != r.Port {
		return false
	}
	if r.PrefixLen > 0 {
		sh := 32 - uint(r.PrefixLen)
		if e.ip>>sh != r.Prefix>>sh {
			return false
		}
	}
	mask := r.mask()
	if e.state == None {
		return mask&StateNoneBit != 0
	}
	return uint32(e.state)&mask != 0
}

// matches is iproute2's: arg is a non-empty prefix of word.
func matches(arg, word string) bool {
	return arg != "" && strings.HasPrefix(word, arg)
}

// ParseNeigh parses ip neigh arguments, with or without a leading
// "neigh"/"neighbour" word: add|change|replace|del ADDR [lladdr LLADDR]
// [nud STATE] dev DEV, and show|flush [to PREFIX] [dev DEV] [nud STATE].
func ParseNeigh(args []string, portIndex func(string) (int, bool)) (Request, error) {
	if len(args) > 0 && (matches(args[0], "neighbour") || matches(args[0], "neighbor")) {
		args = args[1:]
	}
	if len(args) == 0 {
		return Request{Cmd: CmdShow, Port: -1}, nil
	}
	a := args[0]
	rest := args[1:]
	switch {
	case matches(a, "add"):
		return parseModify(CmdAdd, rest, portIndex)
	case matches(a, "change") || a == "chg":
		return parseModify(CmdChange, rest, portIndex)
	case matches(a, "replace"):
		return parseModify(CmdReplace, rest, portIndex)
	case matches(a, "delete"):
		return parseModify(CmdDel, rest, portIndex)
	case matches(a, "show") || matches(a, "list") || matches(a, "lst"):
		return parseFilter(CmdShow, rest, portIndex)
	case matches(a, "flush"):
		if len(rest) == 0 {
			return Request{}, fmt.Errorf("neigh: flush requires arguments")
		}
		return parseFilter(CmdFlush, rest, portIndex)
	}
	return Request{}, fmt.Errorf("neigh: command %q is unknown", a)
}

func parseState(s string) (uint32, error) {
	switch {
	case matches(s, "permanent"):
		return uint32(Permanent), nil
	case matches(s, "reachable"):
		return uint32(Reachable), nil
	case s == "noarp":
		return uint32(NoARP), nil
	case s == "none":
		return 0, nil
	case s == "stale":
		return uint32(Stale), nil
	case s == "incomplete":
		return uint32(Incomplete), nil
	case s == "delay":
		return uint32(Delay), nil
	case s == "probe":
		return uint32(Probe), nil
	case matches(s, "failed"):
		return uint32(Failed), nil
	}
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil || v >= 0x100 || v&(v-1) != 0 {
		return 0, fmt.Errorf("neigh: nud state %q is bad", s)
	}
	return uint32(v), nil
}

// parseIPv4 is netaddr.ParseIPv4 with the subsystem's prefix on its error.
func parseIPv4(s string) (uint32, error) {
	a, err := netaddr.ParseIPv4(s)
	if err != nil {
		return 0, fmt.Errorf("neigh: %w", err)
	}
	return a, nil
}

func lookupPort(name string, portIndex func(string) (int, bool)) (int, error) {
	if portIndex == nil {
		return -1, fmt.Errorf("neigh: cannot find device %q", name)
	}
	i, ok := portIndex(name)
	if !ok {
		return -1, fmt.Errorf("neigh: cannot find device %q", name)
	}
	return i, nil
}

func parseModify(cmd Cmd, args []string, portIndex func(string) (int, bool)) (Request, error) {
	r := Request{Cmd: cmd, Port: -1, State: Permanent}
	var dev string
	haveDst, haveLL, haveDev := false, false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("neigh: %q requires an argument", a)
			}
			i++
			return args[i], nil
		}
		switch {
		case matches(a, "lladdr"):
			v, err := next()
			if err != nil {
				return Request{}, err
			}
			if haveLL {
				return Request{}, fmt.Errorf("neigh: duplicate lladdr %q", v)
			}
			haveLL = true
			if v != "null" {
				mac, err := netaddr.ParseMAC(v)
				if err != nil {
					return Request{}, fmt.Errorf("neigh: %w", err)
				}
				r.MAC, r.HasMAC = mac, true
			}
		case a == "nud":
			v, err := next()
			if err != nil {
				return Request{}, err
			}
			s, err := parseState(v)
			if err != nil {
				return Request{}, err
			}
			r.State = State(s)
		case a == "dev":
			v, err := next()
			if err != nil {
				return Request{}, err
			}
			if haveDev {
				return Request{}, fmt.Errorf("neigh: duplicate dev %q", v)
			}
			dev, haveDev = v, true
		case a == "proxy", a == "router", a == "use", a == "managed", a == "extern_learn":
			return Request{}, fmt.Errorf("neigh: %q is not supported", a)
		default:
			if a == "to" {
				v, err := next()
				if err != nil {
					return Request{}, err
				}
				a = v
			}
			if haveDst {
				return Request{}, fmt.Errorf("neigh: duplicate address %q", a)
			}
			ip, err := parseIPv4(a)
			if err != nil {
				return Request{}, err
			}
			r.IP, haveDst = ip, true
		}
	}
	if !haveDev || !haveDst {
		return Request{}, fmt.Errorf("neigh: device and destination are required arguments")
	}
	p, err := lookupPort(dev, portIndex)
	if err != nil {
		return Request{}, err
	}
	r.Port = p
	return r, nil
}

func parseFilter(cmd Cmd, args []string, portIndex func(string) (int, bool)) (Request, error) {
	r := Request{Cmd: cmd, Port: -1}
	haveDev, havePfx, stateGiven := false, false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("neigh: %q requires an argument", a)
			}
			i++
			return args[i], nil
		}
		switch a {
		case "dev":
			v, err := next()
			if err != nil {
				return Request{}, err
			}
			if haveDev {
				return Request{}, fmt.Errorf("neigh: duplicate dev %q", v)
			}
			haveDev = true
			if r.Port, err = lookupPort(v, portIndex); err != nil {
				return Request{}, err
			}
		case "nud":
			v, err := next()
			if err != nil {
				return Request{}, err
			}
			if !stateGiven {
				stateGiven = true
				r.StateMask = 0
			}
			s, err := parseState(v)
			if err != nil {
				if v != "all" {
					return Request{}, err
				}
				s = 0xff | StateNoneBit
				if cmd == CmdFlush {
					s &^= uint32(NoARP)
				}
			} else if s == 0 {
				s = StateNoneBit
			}
			r.StateMask |= s
		case "proxy", "unused", "vrf", "master", "nomaster":
			return Request{}, fmt.Errorf("neigh: %q is not supported", a)
		default:
			if a == "to" {
				v, err := next()
				if err != nil {
					return Request{}, err
				}
				a = v
			}
			if havePfx {
				return Request{}, fmt.Errorf("neigh: duplicate prefix %q", a)
			}
			havePfx = true
			if a == "all" || a == "any" || a == "default" {
				continue
			}
			pfx, ln, err := parsePrefix(a)
			if err != nil {
				return Request{}, err
			}
			r.Prefix, r.PrefixLen = pfx, ln
		}
	}
	return r, nil
}

func parsePrefix(s string) (uint32, int, error) {
	addr, lens, ok := strings.Cut(s, "/")
	ip, err := parseIPv4(addr)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return ip, 32, nil
	}
	n, err := strconv.Atoi(lens)
	if err != nil || n < 0 || n > 32 {
		return 0, 0, fmt.Errorf("neigh: prefix %q has a bad length", s)
	}
	if n == 0 {
		return 0, 0, nil
	}
	return ip &^ (1<<(32-uint(n)) - 1), n, nil
}

// Apply executes an admin request, serialized with the owner.
func (m *Manager) Apply(req Request) error {
	switch req.Cmd {
	case CmdShow:
		return nil
	case CmdFlush:
		_, err := m.Flush(req)
		return err
	case CmdAdd, CmdChange, CmdReplace, CmdDel:
	default:
		return fmt.Errorf("neigh: unknown command %d", req.Cmd)
	}
	if uint(req.Port) >= uint(len(m.ports)) {
		return fmt.Errorf("neigh: %s %s: port %d: %w", req.Cmd, netaddr.IPv4String(req.IP), req.Port, ErrNoPort)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.ports[req.Port]
	ctx := func(err error) error {
		return fmt.Errorf("neigh: %s %s dev %s: %w", req.Cmd, netaddr.IPv4String(req.IP), p.cfg.Name, err)
	}
	if p.t.single.Load() != nil {
		return ctx(ErrNoARPPort)
	}
	if req.Cmd != CmdDel && req.State != None && req.State&(req.State-1) != 0 {
		return ctx(fmt.Errorf("nud state %#x is not a single state", uint8(req.State)))
	}
	if req.IP == 0 {
		return ctx(fmt.Errorf("address 0.0.0.0 is not a neighbour"))
	}
	t := m.advance(m.clk.Now())
	e := p.t.find(req.IP)
	switch req.Cmd {
	case CmdDel:
		if e == nil {
			return ctx(ErrNotFound)
		}
		_ = m.update(p, e, nil, Failed, fOverride|fAdmin, t)
		m.destroy(p, e)
		return nil
	case CmdAdd:
		if e != nil {
			return ctx(ErrExist)
		}
	case CmdChange:
		if e == nil {
			return ctx(ErrNotFound)
		}
	}
	created := false
	if e == nil {
		if req.State.Valid() && !req.HasMAC {
			return ctx(ErrNoLLAddr)
		}
		if e = m.create(p, req.IP, t); e == nil {
			return ctx(ErrTableFull)
		}
		created = true
	}
	var mac *netaddr.MAC
	if req.HasMAC {
		mm := req.MAC
		mac = &mm
	}
	if err := m.update(p, e, mac, req.State, fOverride|fAdmin, t); err != nil {
		if created {
			m.destroy(p, e)
		}
		return ctx(err)
	}
	return nil
}

// Flush deletes the entries req's filter selects and returns how many.
func (m *Manager) Flush(req Request) (int, error) {
	if req.Port >= len(m.ports) {
		return 0, fmt.Errorf("neigh: flush: port %d: %w", req.Port, ErrNoPort)
	}
	req.Cmd = CmdFlush
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.advance(m.clk.Now())
	n := 0
	for _, p := range m.ports {
		if (req.Port >= 0 && p.idx != req.Port) || p.t.single.Load() != nil {
			continue
		}
		c := m.scratch[:0]
		p.t.each(func(e *Entry) {
			if req.matches(e) {
				c = append(c, e)
			}
		})
		for _, e := range c {
			_ = m.update(p, e, nil, Failed, fOverride|fAdmin, t)
			m.destroy(p, e)
			n++
		}
		clear(c)
		m.scratch = c[:0]
	}
	return n, nil
}

// Entries returns snapshots of port's entries (-1: every port), sorted by
// port then address.
func (m *Manager) Entries(port int) []EntryInfo {
	return m.collect(func(e *Entry) bool { return port < 0 || int(e.port) == port })
}

// Show returns the entries ip neigh show would print for req's filter.
func (m *Manager) Show(req Request) []EntryInfo {
	req.Cmd = CmdShow
	return m.collect(req.matches)
}

func (m *Manager) collect(keep func(*Entry) bool) []EntryInfo {
	m.mu.Lock()
	var out []EntryInfo
	for _, p := range m.ports {
		p.t.each(func(e *Entry) {
			if keep(e) {
				out = append(out, m.info(e, m.last))
			}
		})
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].IP < out[j].IP
	})
	return out
}

func (m *Manager) info(e *Entry, t int64) EntryInfo {
	return EntryInfo{
		Port: int(e.port), IP: e.ip, MAC: e.mac, HasMAC: e.hasMAC, State: e.state,
		Probes: e.probes, Used: age(t, e.used.Load()), Confirmed: age(t, e.confirmed),
		Updated: age(t, e.updated), Seq: e.seq.Load(),
	}
}

func age(now, then int64) time.Duration {
	if then > now {
		return 0
	}
	return time.Duration(now - then)
}

// Format prints e as ip neigh show does: "ADDR dev DEV lladdr MAC STATE".
// The dev part is left out when portName is empty (as with "show dev X");
// lladdr only appears while the state is valid, as the kernel only dumps it
// then.
func Format(e EntryInfo, portName string) string {
	return format(e, portName, false)
}

func format(e EntryInfo, portName string, stats bool) string {
	var b strings.Builder
	b.WriteString(netaddr.IPv4String(e.IP))
	if portName != "" {
		b.WriteString(" dev ")
		b.WriteString(portName)
	}
	if e.HasMAC && e.State.Valid() {
		b.WriteString(" lladdr ")
		b.WriteString(e.MAC.String())
	}
	if stats {
		fmt.Fprintf(&b, " used %d/%d/%d probes %d", int64(e.Used/time.Second),
			int64(e.Confirmed/time.Second), int64(e.Updated/time.Second), e.Probes)
	}
	if e.State != None {
		b.WriteString(" ")
		b.WriteString(e.State.String())
	}
	return b.String()
}

// SetAddrs replaces port's own addresses (the router's addresses on it,
// which it never resolves as neighbours).
func (m *Manager) SetAddrs(port int, addrs []uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if port < 0 || port >= len(m.ports) {
		return ErrNoPort
	}
	m.ports[port].addrs = append([]uint32(nil), addrs...)
	return nil
}
