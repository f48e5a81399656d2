package conf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"go.uber.org/zap"

	"ferry/cache"
	"ferry/cache/neigh"
	"ferry/fib"
	"ferry/netaddr"
	"ferry/pipeline"
)

// Router executes control commands against the router's state.
type Router struct {
	FIB       *fib.FIB
	Gen       *cache.GenID
	Neigh     *neigh.Manager
	Dataplane *pipeline.Dataplane
	Links     LinkSource
	MTU       MTUSetter // nil: MTU changes touch only the FIB and pipeline
	Log       *zap.Logger
	// CP is the control plane's mirror; nil without control_plane.
	CP Mirror
	// ReloadConfig re-reads the configuration file and applies it
	// ('ferryctl reload', SIGHUP); nil when there is no file.
	ReloadConfig func() (string, error)
	// SaveConfig renders the running state as a configuration file.
	SaveConfig func() ([]byte, error)

	trim trimmer
}

// ErrUsage marks a command the router does not understand.
var ErrUsage = errors.New("usage")

// Exec runs one command (the words after "ferryctl").
func (r *Router) Exec(args []string, asJSON bool) (string, any, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("no command: try 'ferryctl --help'")
	}
	switch args[0] {
	case "route", "r", "ro":
		return r.route(args[1:])
	case "rule", "ru":
		return r.rule(args[1:])
	case "neigh", "neighbor", "neighbour", "n":
		return r.neigh(args[1:])
	case "link", "l":
		perQueue := false
		for _, a := range args[1:] {
			switch a {
			case "show", "list":
			case "-s", "-stats", "-statistics":
				perQueue = true
			default:
				return "", nil, fmt.Errorf("link: unknown argument %q (try 'link show [-s]')", a)
			}
		}
		return r.linkShow(perQueue)
	case "stats":
		perCore := false
		for _, a := range args[1:] {
			if a != "-per-core" && a != "--per-core" {
				return "", nil, fmt.Errorf("stats: unknown argument %q (try 'stats [-per-core]')", a)
			}
			perCore = true
		}
		if perCore {
			return r.coreStats()
		}
		return r.stats()
	case "knob", "knobs":
		return r.knob(args[1:])
	case "cp", "control-plane":
		return r.controlPlane(args[1:])
	case "reload":
		if r.ReloadConfig == nil {
			return "", nil, fmt.Errorf("reload: ferryd runs no configuration file")
		}
		out, err := r.ReloadConfig()
		if err != nil {
			return "", nil, err
		}
		return "reloaded: " + out + "\n", map[string]string{"applied": out}, nil
	case "save":
		if r.SaveConfig == nil {
			return "", nil, fmt.Errorf("save: not available")
		}
		b, err := r.SaveConfig()
		if err != nil {
			return "", nil, err
		}
		return string(b), map[string]string{"config": string(b)}, nil
	case "debug":
		switch {
		case len(args) == 2 && args[1] == "gc":
			return r.debugGC()
		case len(args) == 3 && args[1] == "heap":
			return r.debugHeap(args[2])
		}
		return "", nil, fmt.Errorf("debug: try 'ferryctl debug gc' or 'ferryctl debug heap FILE'")
	case "cache":
		if len(args) < 2 || args[1] != "stats" {
			return "", nil, fmt.Errorf("cache: try 'ferryctl cache stats'")
		}
		return r.cacheStats()
	}
	return "", nil, fmt.Errorf("unknown command %q: try 'ferryctl --help'", args[0])
}

// ParseTable reads a table id or name as ip(8) does.
func ParseTable(s string) (uint32, error) {
	t, ok := fib.ParseTable(s)
	if !ok {
		return 0, fmt.Errorf("argument %q is wrong: table id value is invalid", s)
	}
	return t, nil
}

func (r *Router) route(args []string) (string, any, error) {
	verb := "show"
	if len(args) > 0 {
		verb, args = args[0], args[1:]
	}
	switch verb {
	case "show", "list", "lst", "sh", "ls":
		return r.routeShow(args)
	case "get", "g":
		return r.routeGet(args)
	case "flush":
		return r.routeFlush(args)
	}
	if op, ok := routeOps[verb]; ok {
		rt, err := fib.ParseRoute(args, r.FIB)
		if err != nil {
			return "", nil, err
		}
		if err := r.FIB.Apply(fib.RouteCmd{Op: op, Route: rt}); err != nil {
			return "", nil, fmt.Errorf("RTNETLINK answers: %s", errText(err))
		}
		return "", nil, nil
	}
	return "", nil, fmt.Errorf("route: unknown command %q: try 'ferryctl route --help'", verb)
}

var routeOps = map[string]fib.Op{"add": fib.OpAdd, "a": fib.OpAdd, "del": fib.OpDel, "delete": fib.OpDel, "d": fib.OpDel,
	"replace": fib.OpReplace, "change": fib.OpChange, "chg": fib.OpChange, "append": fib.OpAppend, "prepend": fib.OpPrepend}

// ExecBatch runs commands in order, stopping at the first failure. Runs of
// route changes go into one FIB batch: they publish once and bump the genid
// once, which is what makes a full Internet table load in seconds.
func (r *Router) ExecBatch(cmds [][]string) (string, int, error) {
	var out strings.Builder
	var parseErr error
	parseAt := 0
	for i := 0; i < len(cmds); {
		j := i
		for j < len(cmds) && isRouteChange(cmds[j]) {
			j++
		}
		if j > i {
			// Parse first: the parser reads the FIB's ports, which a
			// batch in progress holds locked.
			routes := make([]fib.RouteCmd, 0, j-i)
			for k := i; k < j; k++ {
				rt, err := fib.ParseRoute(cmds[k][2:], r.FIB)
				if err != nil {
					if len(routes) == 0 {
						return out.String(), k, err
					}
					parseErr, parseAt = err, k
					break
				}
				routes = append(routes, fib.RouteCmd{Op: routeOps[cmds[k][1]], Route: rt})
			}
			failed := -1
			var ferr error
			err := r.FIB.Batch(func(b *fib.Batch) error {
				if n, err := b.ApplyAll(routes); err != nil {
					failed, ferr = i+n, fmt.Errorf("RTNETLINK answers: %s", errText(err))
					return ferr
				}
				return nil
			})
			r.noteChanges(len(routes))
			if failed >= 0 {
				return out.String(), failed, ferr
			}
			if err != nil {
				return out.String(), i, err
			}
			if parseErr != nil {
				return out.String(), parseAt, parseErr
			}
			i = j
			continue
		}
		text, _, err := r.Exec(cmds[i], false)
		if err != nil {
			return out.String(), i, err
		}
		if text != "" {
			out.WriteString(text)
			if !strings.HasSuffix(text, "\n") {
				out.WriteByte('\n')
			}
		}
		i++
	}
	return out.String(), 0, nil
}

func isRouteChange(c []string) bool {
	if len(c) < 3 {
		return false
	}
	switch c[0] {
	case "route", "r", "ro":
		_, ok := routeOps[c[1]]
		return ok
	}
	return false
}

// errText capitalises an errno message as iproute2 prints it.
func errText(err error) string {
	s := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s = errno.Error() // what the kernel would answer, without our context
	}
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

// RouteJSON is a route as -json shows it.

func (r *Router) routeShow(args []string) (string, any, error) {
	prod, err := r.routeShowStream(args, true, true)
	if err != nil {
		return "", nil, err
	}
	if prod == nil {
		return r.routeShowCache()
	}
	var b strings.Builder
	data := []any{}
	err = prod(func(text string, records []any) error {
		b.WriteString(text)
		data = append(data, records...)
		return nil
	})
	return b.String(), data, err
}

// Stream streams 'route show' (see Streamer): a full table's lines go out
// as they are formatted, never all in memory at once.
func (r *Router) Stream(args []string, asJSON bool) (Producer, error) {
	if len(args) == 0 {
		return nil, nil
	}
	switch args[0] {
	case "route", "r", "ro":
	default:
		return nil, nil
	}
	args = args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "show", "list", "lst", "sh", "ls":
			args = args[1:]
		default:
			return nil, nil
		}
	}
	prod, err := r.routeShowStream(args, !asJSON, asJSON)
	if err != nil {
		return nil, err
	}
	if prod == nil { // route show cache: short, not streamed
		return nil, nil
	}
	return prod, nil
}

// routeShowPart is how many routes go in one part of a streamed answer.
const routeShowPart = 8192

// routeShowStream parses 'route show' arguments and returns the producer
// of its answer, its lines and or its JSON records: nil for 'route show
// cache'. The producer reads only the tables' published state.
func (r *Router) routeShowStream(args []string, lines, asJSON bool) (Producer, error) {
	tables := []uint32{fib.TableMain}
	proto := -1 // any
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "table":
			if i+1 >= len(args) {
				return nil, fmt.Errorf("route show: table needs a value")
			}
			i++
			if args[i] == "all" {
				tables = r.FIB.Tables()
				continue
			}
			t, err := ParseTable(args[i])
			if err != nil {
				return nil, err
			}
			tables = []uint32{t}
		case "cache":
			return nil, nil
		case "proto", "protocol":
			if i+1 >= len(args) {
				return nil, fmt.Errorf("route show: proto needs a value")
			}
			i++
			p, err := fib.ParseProto(args[i])
			if err != nil {
				return nil, err
			}
			proto = int(p)
		default:
			return nil, fmt.Errorf("route show: unknown argument %q", args[i])
		}
	}
	f := r.FIB
	return func(emit func(string, []any) error) error {
		var b []byte
		var records []any
		n := 0
		for _, t := range tables {
			withTable := len(tables) > 1 && t != fib.TableMain
			for _, rt := range f.Routes(t) {
				if proto >= 0 && int(rt.Proto) != proto {
					continue
				}
				if asJSON {
					records = append(records, fib.RouteJSON(rt, f, len(tables) > 1))
				}
				if lines {
					b = fib.AppendRoute(b, rt, f, withTable)
					b = append(b, '\n')
				}
				if n++; n == routeShowPart {
					if err := emit(bytesText(b), records); err != nil {
						return err
					}
					b, records, n = b[:0], records[:0], 0
				}
			}
		}
		if n == 0 {
			return nil
		}
		return emit(bytesText(b), records)
	}, nil
}

// bytesText is b as a string without a copy, for emit only (see
// Producer): a full table's listing would otherwise leave a copy of
// itself behind as garbage.
func bytesText(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// RouteGetJSON is 'route get' as -json shows it.
type RouteGetJSON struct {
	Dst     string `json:"dst"`
	Type    string `json:"type"`
	Gateway string `json:"gateway,omitempty"`
	Dev     string `json:"dev,omitempty"`
	Prefsrc string `json:"prefsrc,omitempty"`
	Table   uint32 `json:"table"`
	MTU     uint32 `json:"mtu,omitempty"`
	Text    string `json:"text"`
}

var typeNames = map[fib.Type]string{fib.Unicast: "unicast", fib.Local: "local", fib.Broadcast: "broadcast",
	fib.Anycast: "anycast", fib.Multicast: "multicast", fib.Blackhole: "blackhole", fib.Unreachable: "unreachable",
	fib.Prohibit: "prohibit", fib.Throw: "throw"}

// ipProtoNames are the protocol names route get takes, as iproute2's.
var ipProtoNames = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132}

// routeQuery is what 'route get' asks for: the lookup key, and the flow's
// protocol and ports for a multipath hash over them.
type routeQuery struct {
	key          fib.Key
	proto        uint8
	sport, dport uint16
}

func (r *Router) routeGet(args []string) (string, any, error) {
	q, err := r.parseRouteGet(args)
	if err != nil {
		return "", nil, err
	}
	res, exc, err := r.lookupRouteGet(&q)
	if err != nil {
		return "", nil, err
	}
	k := &q.key
	text := fib.FormatGet(k.Dst, k, &res, r.FIB)
	if exc != nil {
		text = strings.TrimRight(text, "\n") + "\n    " + exceptionText(exc, r.now())
	}
	return text, r.routeGetJSON(k.Dst, &res, text), nil
}

// parseRouteGet reads the arguments of 'route get' as ip route get takes them.
func (r *Router) parseRouteGet(args []string) (routeQuery, error) {
	q := routeQuery{key: fib.Key{Iif: -1, Oif: -1}}
	k := &q.key
	if len(args) == 0 {
		return q, fmt.Errorf("route get: an address is needed")
	}
	var dstSet bool
	for i := 0; i < len(args); i++ {
		a := args[i]
		var v string
		var err error
		switch a {
		case "from", "iif", "oif", "tos", "dsfield", "mark", "to", "ipproto", "sport", "dport":
			if i+1 >= len(args) {
				return q, fmt.Errorf("route get: %s needs a value", a)
			}
			i++
			v = args[i]
		}
		switch a {
		case "from":
			if k.Src, err = netaddr.ParseIPv4(strings.TrimSuffix(v, "/32")); err != nil {
				return q, err
			}
		case "iif", "oif":
			p, ok := r.FIB.PortIndex(v)
			if !ok {
				return q, fmt.Errorf("Cannot find device %q", v)
			}
			if a == "iif" {
				k.Iif = p
			} else {
				k.Oif = p
			}
		case "tos", "dsfield":
			t, err := strconv.ParseUint(v, 0, 8)
			if err != nil {
				return q, fmt.Errorf("argument %q is wrong: TOS value is invalid", v)
			}
			k.Tos = uint8(t)
		case "mark":
			m, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				return q, fmt.Errorf("argument %q is wrong: mark value is invalid", v)
			}
			k.Mark = uint32(m)
		case "ipproto":
			n, ok := ipProtoNames[v]
			if !ok {
				x, err := strconv.ParseUint(v, 0, 8)
				if err != nil {
					return q, fmt.Errorf("argument %q is wrong: Invalid \"ipproto\" value", v)
				}
				n = uint8(x)
			}
			q.proto = n
		case "sport", "dport":
			x, err := strconv.ParseUint(v, 0, 16)
			if err != nil {
				return q, fmt.Errorf("argument %q is wrong: invalid %s", v, a)
			}
			if a == "sport" {
				q.sport = uint16(x)
			} else {
				q.dport = uint16(x)
			}
		case "to":
			a = v
			fallthrough
		default:
			if dstSet {
				return q, fmt.Errorf("route get: unexpected argument %q", a)
			}
			if k.Dst, err = netaddr.ParseIPv4(strings.TrimSuffix(a, "/32")); err != nil {
				return q, err
			}
			dstSet = true
		}
	}
	if !dstSet {
		return q, fmt.Errorf("route get: an address is needed")
	}
	return q, nil
}

// lookupRouteGet looks q up as a packet received on its iif would be, or as
// one the router sends, and finds the nexthop exception for its destination;
// a redirected gateway replaces the route's in the result.
func (r *Router) lookupRouteGet(q *routeQuery) (fib.Result, *cache.Exception, error) {
	k := &q.key
	k.Hash = fib.FlowHash(k.Src, k.Dst)
	if r.Dataplane != nil && r.Dataplane.Knobs().MultipathHashL4 {
		k.Hash = fib.FlowHashL4(k.Src, k.Dst, q.proto, q.sport, q.dport)
	}
	var res fib.Result
	if k.Iif >= 0 {
		r.FIB.Lookup(k, &res)
	} else {
		r.FIB.LookupOutput(k, &res)
	}
	if res.Err != nil {
		return res, nil, fmt.Errorf("RTNETLINK answers: %s", errText(res.Err))
	}
	var exc *cache.Exception
	if nh := res.Nexthop; nh != nil && nh.Cache != nil && res.Type == fib.Unicast {
		if t := nh.Cache.Exceptions(); t != nil {
			exc = t.Find(k.Dst, r.now())
		}
	}
	if exc != nil && exc.Gateway != 0 {
		redirected := *res.Nexthop
		redirected.Gateway = exc.Gateway
		res.Nexthop = &redirected
	}
	return res, exc, nil
}

// routeGetJSON is the -json form of a 'route get' answer for dst.
func (r *Router) routeGetJSON(dst uint32, res *fib.Result, text string) RouteGetJSON {
	j := RouteGetJSON{Dst: netaddr.IPv4String(dst), Type: typeNames[res.Type], Table: res.Table, MTU: res.MTU, Text: text}
	if nh := res.Nexthop; nh != nil {
		if nh.Gateway != 0 {
			j.Gateway = netaddr.IPv4String(nh.Gateway)
		}
		if nh.Port >= 0 {
			j.Dev = r.FIB.PortName(nh.Port)
		}
	}
	if res.Prefsrc != 0 {
		j.Prefsrc = netaddr.IPv4String(res.Prefsrc)
	}
	return j
}

func (r *Router) routeFlush(args []string) (string, any, error) {
	if len(args) == 1 && args[0] == "cache" {
		n := r.FIB.Exceptions().Flush()
		r.Gen.Bump()
		return "", map[string]int{"flushed": n}, nil
	}
	if len(args) == 2 && (args[0] == "proto" || args[0] == "protocol") {
		return r.routeFlushProto(args[1])
	}
	if len(args) != 2 || args[0] != "table" {
		return "", nil, fmt.Errorf("route flush: use 'route flush table T', 'route flush proto P' or 'route flush cache'")
	}
	t, err := ParseTable(args[1])
	if err != nil {
		return "", nil, err
	}
	n, err := r.FIB.Flush(t)
	if err != nil {
		return "", nil, err
	}
	return "", map[string]int{"flushed": n}, nil
}

// routeFlushProto removes every route of a protocol from every table,
// in one batch, as 'ip route flush proto P table all'.
func (r *Router) routeFlushProto(name string) (string, any, error) {
	p, err := fib.ParseProto(name)
	if err != nil {
		return "", nil, err
	}
	var victims []*fib.Route
	for _, t := range r.FIB.Tables() {
		for _, rt := range r.FIB.Routes(t) {
			if rt.Proto == p && !(rt.Proto == fib.ProtoKernel && t == fib.TableLocal) {
				victims = append(victims, rt)
			}
		}
	}
	n := 0
	err = r.FIB.Batch(func(b *fib.Batch) error {
		for _, rt := range victims {
			if err := b.Del(*rt); err == nil {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return "", map[string]int{"flushed": n}, nil
}

func (r *Router) rule(args []string) (string, any, error) {
	verb := "show"
	if len(args) > 0 {
		verb, args = args[0], args[1:]
	}
	switch verb {
	case "show", "list", "lst", "sh":
		var b strings.Builder
		data := []map[string]any{}
		for _, ru := range r.FIB.Rules() {
			line := fib.FormatRule(ru, r.FIB)
			b.WriteString(line)
			b.WriteByte('\n')
			data = append(data, fib.RuleJSON(ru, r.FIB))
		}
		return b.String(), data, nil
	case "add", "a", "del", "delete", "d":
		ru, err := fib.ParseRule(args, r.FIB)
		if err != nil {
			return "", nil, err
		}
		if verb[0] == 'a' {
			err = r.FIB.AddRule(ru)
		} else {
			err = r.FIB.DelRule(ru)
		}
		if err != nil {
			return "", nil, fmt.Errorf("RTNETLINK answers: %s", errText(err))
		}
		return "", nil, nil
	}
	return "", nil, fmt.Errorf("rule: unknown command %q: try 'ferryctl rule --help'", verb)
}

// NeighJSON is one neighbour as -json shows it.
type NeighJSON struct {
	Dst    string   `json:"dst"`
	Dev    string   `json:"dev"`
	LLAddr string   `json:"lladdr,omitempty"`
	State  []string `json:"state"`
}

func (r *Router) neigh(args []string) (string, any, error) {
	if len(args) == 0 {
		args = []string{"show"}
	}
	if args[0] == "stats" {
		st := r.Neigh.Stats()
		text := fmt.Sprintf("entries %d\nallocs %d\ndestroys %d\nlookups %d\nhits %d\nres_failed %d\n"+
			"rcv_probes_mcast %d\nrcv_probes_ucast %d\nperiodic_gc_runs %d\nforced_gc_runs %d\n"+
			"table_fulls %d\nunresolved_discards %d\nevent_drops %d\n",
			st.Entries, st.Allocs, st.Destroys, st.Lookups, st.Hits, st.ResFailed, st.RcvProbesMcast,
			st.RcvProbesUcast, st.PeriodicGCRuns, st.ForcedGCRuns, st.TableFulls, st.UnresolvedDiscards, st.EventDrops)
		return text, st, nil
	}
	req, err := neigh.ParseNeigh(args, r.FIB.PortIndex)
	if err != nil {
		return "", nil, err
	}
	switch req.Cmd {
	case neigh.CmdShow:
		var b strings.Builder
		data := []NeighJSON{}
		for _, e := range r.Neigh.Show(req) {
			name := r.FIB.PortName(e.Port)
			b.WriteString(neigh.Format(e, name))
			b.WriteByte('\n')
			j := NeighJSON{Dst: netaddr.IPv4String(e.IP), Dev: name, State: []string{e.State.String()}}
			if e.HasMAC {
				j.LLAddr = e.MAC.String()
			}
			data = append(data, j)
		}
		return b.String(), data, nil
	case neigh.CmdFlush:
		n, err := r.Neigh.Flush(req)
		if err != nil {
			return "", nil, err
		}
		return "", map[string]int{"flushed": n}, nil
	}
	if err := r.Neigh.Apply(req); err != nil {
		return "", nil, fmt.Errorf("RTNETLINK answers: %s", errText(err))
	}
	return "", nil, nil
}
