package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"ferry/cache"
	"ferry/cache/neigh"
	"ferry/conf/linuxcp"
	"ferry/fib"
	"ferry/pipeline"
)

// LinkStat is one port as 'link show' reports it.
type LinkStat struct {
	Name      string `json:"ifname"`
	Dev       string `json:"dev"`
	MAC       string `json:"address"`
	Up        bool   `json:"-"`
	Speed     uint32 `json:"speed_mbps"`
	MTU       int    `json:"mtu"`
	RxPackets uint64 `json:"-"`
	TxPackets uint64 `json:"-"`
	RxBytes   uint64 `json:"-"`
	TxBytes   uint64 `json:"-"`
	RxMissed  uint64 `json:"-"`
	RxErrors  uint64 `json:"-"`
	TxErrors  uint64 `json:"-"`
	RxNoMbuf  uint64 `json:"-"`
	TxDropped uint64 `json:"-"`
	// Queues are the port's queues, one a pipeline, as the pipelines
	// counted them.
	Queues []QueueStat `json:"queues"`
	// KernelIface is the port's kernel interface (in Netns) when the
	// control plane is on.
	KernelIface string `json:"kernel_iface,omitempty"`
	Netns       string `json:"netns,omitempty"`
}

// linkJSON is a port as `ip -j -s link show` gives an interface, with
// ferry's own fields beside.
type linkJSON struct {
	LinkStat
	Operstate string `json:"operstate"`
	LinkType  string `json:"link_type"`
	Stats64   struct {
		RX struct {
			Bytes   uint64 `json:"bytes"`
			Packets uint64 `json:"packets"`
			Errors  uint64 `json:"errors"`
			Dropped uint64 `json:"dropped"`
			NoMbuf  uint64 `json:"nombuf"`
		} `json:"rx"`
		TX struct {
			Bytes   uint64 `json:"bytes"`
			Packets uint64 `json:"packets"`
			Errors  uint64 `json:"errors"`
			Dropped uint64 `json:"dropped"`
		} `json:"tx"`
	} `json:"stats64"`
}

func toLinkJSON(l LinkStat) linkJSON {
	j := linkJSON{LinkStat: l, Operstate: "DOWN", LinkType: "ether"}
	if l.Up {
		j.Operstate = "UP"
	}
	j.Stats64.RX.Bytes, j.Stats64.RX.Packets, j.Stats64.RX.Errors, j.Stats64.RX.Dropped, j.Stats64.RX.NoMbuf = l.RxBytes, l.RxPackets, l.RxErrors, l.RxMissed, l.RxNoMbuf
	j.Stats64.TX.Bytes, j.Stats64.TX.Packets, j.Stats64.TX.Errors, j.Stats64.TX.Dropped = l.TxBytes, l.TxPackets, l.TxErrors, l.TxDropped
	return j
}

// QueueStat is one rx/tx queue pair of a port: the pipeline that polls it
// and what passed through.
type QueueStat struct {
	Queue     int    `json:"queue"`
	Lcore     int    `json:"lcore"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	TxDropped uint64 `json:"tx_dropped"` // the queue was full
	RxDropped uint64 `json:"rx_dropped"` // frames in chained buffers
}

// LinkSource reports the data plane's ports.
type LinkSource interface {
	Links() []LinkStat
}

// Router executes control commands against the router's state.
type Router struct {
	FIB    *fib.FIB
	Gen    *cache.GenID
	Neigh  *neigh.Manager
	Shared *pipeline.Shared
	Links  LinkSource
	MTU    MTUSetter // nil: MTU changes touch only the FIB and pipeline
	Log    *zap.Logger
	// CP is the control plane's mirror; nil without control_plane.
	CP Mirror
	// ReloadConfig re-reads the configuration file and applies it
	// ('ferryctl reload', SIGHUP); nil when there is no file.
	ReloadConfig func() (string, error)
	// SaveConfig renders the running state as a configuration file.
	SaveConfig func() ([]byte, error)
}

// Mirror is the control plane's netlink mirror as the control API sees it.
type Mirror interface {
	Status() linuxcp.Status
	SetMirror(on bool)
	// OwnsRoute and OwnsRule tell what the mirror put in the FIB (a rule
	// as FormatRule prints it).
	OwnsRoute(r *fib.Route) bool
	OwnsRule(text string) bool
}

// controlPlane runs 'cp status' and 'cp mirror on|off'.
func (r *Router) controlPlane(args []string) (string, any, error) {
	if r.CP == nil {
		return "", nil, fmt.Errorf("cp: no control plane (add control_plane: to the configuration)")
	}
	if len(args) == 2 && args[0] == "mirror" && (args[1] == "on" || args[1] == "off") {
		r.CP.SetMirror(args[1] == "on")
		return "", nil, nil
	}
	if len(args) > 1 || len(args) == 1 && args[0] != "status" {
		return "", nil, fmt.Errorf("cp: try 'cp status' or 'cp mirror on|off'")
	}
	st := r.CP.Status()
	var b strings.Builder
	state := "off"
	if st.Running {
		state = "on"
	}
	ns := st.Netns
	if ns == "" {
		ns = "ferryd's own"
	}
	fmt.Fprintf(&b, "mirror %s, netns %s\nroutes mirrored %d\nrules mirrored %d\nroute events %d\nresyncs %d (last %s, %.2f s)\nfailed %d\n",
		state, ns, st.Routes, st.Rules, st.Events, st.Resyncs, st.LastResync, st.ResyncTook, st.Failed)
	keys := make([]string, 0, len(st.Skipped))
	for k := range st.Skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "skipped %s %d\n", k, st.Skipped[k])
	}
	if st.LastError != "" {
		fmt.Fprintf(&b, "last error %s: %s\n", st.LastErrorAt, st.LastError)
	}
	return b.String(), st, nil
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
	switch s {
	case "main":
		return fib.TableMain, nil
	case "local":
		return fib.TableLocal, nil
	case "default":
		return fib.TableDefault, nil
	}
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("argument %q is wrong: table id value is invalid", s)
	}
	return uint32(v), nil
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
			routes := make([]fib.Route, 0, j-i)
			for k := i; k < j; k++ {
				rt, err := fib.ParseRoute(cmds[k][2:], r.FIB)
				if err != nil {
					if len(routes) == 0 {
						return out.String(), k, err
					}
					parseErr, parseAt = err, k
					break
				}
				routes = append(routes, rt)
			}
			failed := -1
			var ferr error
			err := r.FIB.Batch(func(b *fib.Batch) error {
				for n, rt := range routes {
					if err := b.Apply(fib.RouteCmd{Op: routeOps[cmds[i+n][1]], Route: rt}); err != nil {
						failed, ferr = i+n, fmt.Errorf("RTNETLINK answers: %s", errText(err))
						return ferr
					}
				}
				return nil
			})
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
	tables := []uint32{fib.TableMain}
	proto := -1 // any
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "table":
			if i+1 >= len(args) {
				return "", nil, fmt.Errorf("route show: table needs a value")
			}
			i++
			if args[i] == "all" {
				tables = r.FIB.Tables()
				continue
			}
			t, err := ParseTable(args[i])
			if err != nil {
				return "", nil, err
			}
			tables = []uint32{t}
		case "cache":
			return r.routeShowCache()
		case "proto", "protocol":
			if i+1 >= len(args) {
				return "", nil, fmt.Errorf("route show: proto needs a value")
			}
			i++
			p, err := fib.ParseProto(args[i])
			if err != nil {
				return "", nil, err
			}
			proto = int(p)
		default:
			return "", nil, fmt.Errorf("route show: unknown argument %q", args[i])
		}
	}
	var b strings.Builder
	var data []map[string]any
	for _, t := range tables {
		for _, rt := range r.FIB.Routes(t) {
			if proto >= 0 && int(rt.Proto) != proto {
				continue
			}
			line := fib.FormatRoute(rt, r.FIB)
			if len(tables) > 1 && t != fib.TableMain && !strings.Contains(line, " table ") {
				line += " table " + tableName(t)
			}
			b.WriteString(line)
			b.WriteByte('\n')
			data = append(data, fib.RouteJSON(rt, r.FIB, len(tables) > 1))
		}
	}
	if data == nil {
		data = []map[string]any{}
	}
	return b.String(), data, nil
}

func tableName(t uint32) string {
	switch t {
	case fib.TableMain:
		return "main"
	case fib.TableLocal:
		return "local"
	case fib.TableDefault:
		return "default"
	}
	return strconv.FormatUint(uint64(t), 10)
}

func parseIPv4(s string) (uint32, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return Uint32(a.As4()), nil
}

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

func (r *Router) routeGet(args []string) (string, any, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("route get: an address is needed")
	}
	k := fib.Key{Iif: -1, Oif: -1}
	var dstSet bool
	var proto uint8
	var sport, dport uint16
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("route get: %s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var v string
		var err error
		switch a {
		case "from", "iif", "oif", "tos", "dsfield", "mark", "to", "ipproto", "sport", "dport":
			if v, err = val(); err != nil {
				return "", nil, err
			}
		}
		switch a {
		case "from":
			if k.Src, err = parseIPv4(strings.TrimSuffix(v, "/32")); err != nil {
				return "", nil, err
			}
		case "iif", "oif":
			p, ok := r.FIB.PortIndex(v)
			if !ok {
				return "", nil, fmt.Errorf("Cannot find device %q", v)
			}
			if a == "iif" {
				k.Iif = p
			} else {
				k.Oif = p
			}
		case "tos", "dsfield":
			t, perr := strconv.ParseUint(v, 0, 8)
			if perr != nil {
				return "", nil, fmt.Errorf("argument %q is wrong: TOS value is invalid", v)
			}
			k.Tos = uint8(t)
		case "mark":
			m, perr := strconv.ParseUint(v, 0, 32)
			if perr != nil {
				return "", nil, fmt.Errorf("argument %q is wrong: mark value is invalid", v)
			}
			k.Mark = uint32(m)
		case "ipproto":
			n, ok := ipProtoNames[v]
			if !ok {
				x, perr := strconv.ParseUint(v, 0, 8)
				if perr != nil {
					return "", nil, fmt.Errorf("argument %q is wrong: Invalid \"ipproto\" value", v)
				}
				n = uint8(x)
			}
			proto = n
		case "sport", "dport":
			x, perr := strconv.ParseUint(v, 0, 16)
			if perr != nil {
				return "", nil, fmt.Errorf("argument %q is wrong: invalid %s", v, a)
			}
			if a == "sport" {
				sport = uint16(x)
			} else {
				dport = uint16(x)
			}
		case "to":
			a = v
			fallthrough
		default:
			if dstSet {
				return "", nil, fmt.Errorf("route get: unexpected argument %q", a)
			}
			if k.Dst, err = parseIPv4(strings.TrimSuffix(a, "/32")); err != nil {
				return "", nil, err
			}
			dstSet = true
		}
	}
	if !dstSet {
		return "", nil, fmt.Errorf("route get: an address is needed")
	}
	k.Hash = fib.FlowHash(k.Src, k.Dst)
	if r.Shared != nil && r.Shared.Knobs().MultipathHashL4 {
		k.Hash = fib.FlowHashL4(k.Src, k.Dst, proto, sport, dport)
	}
	var res fib.Result
	if k.Iif >= 0 {
		r.FIB.Lookup(&k, &res)
	} else {
		r.FIB.LookupOutput(&k, &res)
	}
	if res.Err != nil {
		return "", nil, fmt.Errorf("RTNETLINK answers: %s", errText(res.Err))
	}
	var exc *cache.Exception
	if nh := res.Nexthop; nh != nil && nh.Cache != nil && res.Type == fib.Unicast {
		if t := nh.Cache.Exceptions(); t != nil {
			exc = t.Find(k.Dst, cache.Now())
		}
	}
	if exc != nil && exc.Gateway != 0 {
		// The redirected gateway replaces the route's for this destination.
		redirected := *res.Nexthop
		redirected.Gateway = exc.Gateway
		res.Nexthop = &redirected
	}
	text := fib.FormatGet(k.Dst, &k, &res, r.FIB)
	if exc != nil {
		text = strings.TrimRight(text, "\n") + "\n    " + exceptionText(exc)
	}
	j := RouteGetJSON{Dst: pipeline.IPString(k.Dst), Type: typeNames[res.Type], Table: res.Table, MTU: res.MTU, Text: text}
	if nh := res.Nexthop; nh != nil {
		if nh.Gateway != 0 {
			j.Gateway = pipeline.IPString(nh.Gateway)
		}
		if nh.Port >= 0 {
			j.Dev = r.FIB.PortName(nh.Port)
		}
	}
	if res.Prefsrc != 0 {
		j.Prefsrc = pipeline.IPString(res.Prefsrc)
	}
	return text, j, nil
}

func (r *Router) routeFlush(args []string) (string, any, error) {
	if len(args) == 1 && args[0] == "cache" {
		n := cache.FlushExceptions()
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
			j := NeighJSON{Dst: pipeline.IPString(e.IP), Dev: name, State: []string{e.State.String()}}
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

func (r *Router) linkShow(perQueue bool) (string, any, error) {
	links := r.Links.Links()
	var b strings.Builder
	for i, l := range links {
		state := "DOWN"
		if l.Up {
			state = "UP"
		}
		fmt.Fprintf(&b, "%d: %s: mtu %d state %s dev %s\n    link/ether %s speed %dMb/s\n", i, l.Name, l.MTU, state, l.Dev, l.MAC, l.Speed)
		if l.KernelIface != "" {
			ns := l.Netns
			if ns == "" {
				ns = "ferryd's own"
			}
			fmt.Fprintf(&b, "    kernel interface %s (netns %s)\n", l.KernelIface, ns)
		}
		fmt.Fprintf(&b, "    RX: packets %d bytes %d missed %d errors %d nombuf %d\n", l.RxPackets, l.RxBytes, l.RxMissed, l.RxErrors, l.RxNoMbuf)
		fmt.Fprintf(&b, "    TX: packets %d bytes %d dropped %d errors %d\n", l.TxPackets, l.TxBytes, l.TxDropped, l.TxErrors)
		if perQueue {
			for _, q := range l.Queues {
				fmt.Fprintf(&b, "    queue %d (lcore %d): RX packets %d dropped %d  TX packets %d dropped %d\n",
					q.Queue, q.Lcore, q.RxPackets, q.RxDropped, q.TxPackets, q.TxDropped)
			}
		}
	}
	data := make([]linkJSON, len(links))
	for i, l := range links {
		data[i] = toLinkJSON(l)
	}
	return b.String(), data, nil
}

func (r *Router) stats() (string, any, error) {
	c := r.Shared.Counters()
	data := map[string]uint64{}
	var names []string
	for i := 0; i < pipeline.NumCounters; i++ {
		name := pipeline.Counter(i).Name()
		data[name] = c[i]
		names = append(names, name)
	}
	var b strings.Builder
	b.WriteString("packets:\n")
	for i := 0; i < pipeline.NumCounters; i++ {
		ctr := pipeline.Counter(i)
		if !ctr.IsDrop() {
			fmt.Fprintf(&b, "  %-24s %d\n", ctr.Name(), c[i])
		}
	}
	b.WriteString("drops:\n")
	for i := 0; i < pipeline.NumCounters; i++ {
		ctr := pipeline.Counter(i)
		if ctr.IsDrop() {
			fmt.Fprintf(&b, "  %-24s %d\n", ctr.Name(), c[i])
		}
	}
	kp := r.Shared.KernelPathStats()
	if kp != nil {
		b.WriteString("kernel path:\n")
		for i, k := range kp {
			fmt.Fprintf(&b, "  %-10s punted %d dropped_queue_full %d dropped_rate %d  injected %d inject_dropped %d\n",
				r.FIB.PortName(i), k.Punted.Frames, k.Punted.Full, k.Punted.Limited, k.Injected.Frames, k.Injected.Full+k.Injected.TooLong)
		}
	}
	ns := r.Neigh.Stats()
	fmt.Fprintf(&b, "neighbours:\n  entries %d allocs %d destroys %d res_failed %d table_fulls %d forced_gc_runs %d\n",
		ns.Entries, ns.Allocs, ns.Destroys, ns.ResFailed, ns.TableFulls, ns.ForcedGCRuns)
	rt := readRuntime()
	fmt.Fprintf(&b, "memory:\n  hugepage_bytes %d\n", rt.HugepageBytes)
	fmt.Fprintf(&b, "runtime:\n  gc_cycles %d heap_bytes %d heap_live_bytes %d\n", rt.GCCycles, rt.HeapBytes, rt.HeapLive)
	sort.Strings(names)
	out := map[string]any{"counters": data, "neigh": ns, "runtime": rt}
	if kp != nil {
		byPort := map[string]pipeline.KernelPathStats{}
		for i, k := range kp {
			byPort[r.FIB.PortName(i)] = k
		}
		out["kernel_path"] = byPort
	}
	return b.String(), out, nil
}

// CoreStat is one pipeline's counters, for 'stats -per-core'.
type CoreStat struct {
	Core     int               `json:"core"` // the pipeline's queue index
	Counters map[string]uint64 `json:"counters"`
}

// coreStats shows each pipeline's packets and drops side by side, a
// column a core; a counter every core left at zero is left out.
func (r *Router) coreStats() (string, any, error) {
	per := r.Shared.CoreCounters()
	data := make([]CoreStat, len(per))
	for i, c := range per {
		data[i] = CoreStat{Core: i, Counters: map[string]uint64{}}
		for j := 0; j < pipeline.NumCounters; j++ {
			data[i].Counters[pipeline.Counter(j).Name()] = c[j]
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s", "")
	for i := range per {
		fmt.Fprintf(&b, " %14s", fmt.Sprintf("core %d", i))
	}
	b.WriteByte('\n')
	for j := 0; j < pipeline.NumCounters; j++ {
		any := false
		for i := range per {
			any = any || per[i][j] != 0
		}
		if !any && pipeline.Counter(j) != pipeline.RxPackets && pipeline.Counter(j) != pipeline.TxPackets {
			continue
		}
		fmt.Fprintf(&b, "%-24s", pipeline.Counter(j).Name())
		for i := range per {
			fmt.Fprintf(&b, " %14d", per[i][j])
		}
		b.WriteByte('\n')
	}
	return b.String(), data, nil
}

// hugepageBytes is the hugepage memory the process maps, from
// /proc/self/smaps_rollup (hugetlbfs files stay mapped after --huge-unlink).
func hugepageBytes() uint64 {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return 0
	}
	var kb uint64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Shared_Hugetlb:") || strings.HasPrefix(l, "Private_Hugetlb:") {
			if f := strings.Fields(l); len(f) >= 2 {
				v, _ := strconv.ParseUint(f[1], 10, 64)
				kb += v
			}
		}
	}
	return kb << 10
}

// debugGC collects garbage now and returns memory to the system, so that
// the live heap can be read (as after the runtime's forced collection,
// without the two minutes' wait).
func (r *Router) debugGC() (string, any, error) {
	before := readRuntime()
	debug.FreeOSMemory() // a full collection first
	after := readRuntime()
	return fmt.Sprintf("heap_bytes %d -> %d (live %d)\n", before.HeapBytes, after.HeapBytes, after.HeapLive), after, nil
}

// debugHeap writes a heap profile (go tool pprof) to path on ferryd's
// machine, after a full collection.
func (r *Router) debugHeap(path string) (string, any, error) {
	runtime.GC()
	fh, err := os.Create(path)
	if err != nil {
		return "", nil, err
	}
	defer fh.Close()
	if err := pprof.WriteHeapProfile(fh); err != nil {
		return "", nil, err
	}
	return "heap profile written to " + path + "\n", nil, nil
}

// RuntimeStats is what the Go runtime tells of the daemon's memory: the
// forwarding path allocates nothing, so garbage collection cycles that
// grow while only packets flow point at a regression.
type RuntimeStats struct {
	HugepageBytes uint64 `json:"hugepage_bytes"`  // hugepage memory mapped (DPDK's)
	GCCycles      uint64 `json:"gc_cycles"`       // completed since start
	HeapBytes     uint64 `json:"heap_bytes"`      // live objects and unswept garbage
	HeapLive      uint64 `json:"heap_live_bytes"` // live objects as the last collection found them
}

func readRuntime() RuntimeStats {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	var rt RuntimeStats
	if s[0].Value.Kind() == metrics.KindUint64 {
		rt.GCCycles = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		rt.HeapBytes = s[1].Value.Uint64()
	}
	if s[2].Value.Kind() == metrics.KindUint64 {
		rt.HeapLive = s[2].Value.Uint64()
	}
	rt.HugepageBytes = hugepageBytes()
	return rt
}

func (r *Router) cacheStats() (string, any, error) {
	c := r.Shared.Counters()
	data := map[string]uint64{
		"hint_hits":       c[pipeline.HintHits],
		"fib_lookups":     c[pipeline.FIBLookups],
		"nh_cache_hits":   c[pipeline.NhCacheHits],
		"nh_cache_misses": c[pipeline.NhCacheMisses],
		"decisions_made":  c[pipeline.DecisionsMade],
		"exception_hits":  c[pipeline.ExceptionHits],
		"exceptions":      uint64(countExceptions()),
		"genid_bumps":     r.Gen.Bumps(),
		"genid":           uint64(r.Gen.Current()),
	}
	keys := []string{"hint_hits", "fib_lookups", "nh_cache_hits", "nh_cache_misses", "exception_hits", "decisions_made", "exceptions", "genid_bumps", "genid"}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%-16s %d\n", k, data[k])
	}
	return b.String(), data, nil
}

// exceptionText is the "cache" line ip route get prints for an exception.
func exceptionText(e *cache.Exception) string {
	var b strings.Builder
	b.WriteString("cache")
	if e.Gateway != 0 {
		b.WriteString(" <redirected>")
	}
	if e.Expires != 0 {
		left := (e.Expires - cache.Now()) / 1e9
		if left < 0 {
			left = 0
		}
		fmt.Fprintf(&b, " expires %dsec", left)
	}
	if e.PMTU != 0 {
		if e.Locked {
			fmt.Fprintf(&b, " mtu lock %d", e.PMTU)
		} else {
			fmt.Fprintf(&b, " mtu %d", e.PMTU)
		}
	}
	return b.String()
}

// ExceptionJSON is one live exception as -json shows it.
type ExceptionJSON struct {
	Dst        string `json:"dst"`
	Gateway    string `json:"gateway,omitempty"`
	Dev        string `json:"dev"`
	Redirected bool   `json:"redirected"`
	MTU        uint32 `json:"mtu,omitempty"`
	Expires    int64  `json:"expires_sec"`
}

// routeShowCache lists live nexthop exceptions as ip route show cache does.
func (r *Router) routeShowCache() (string, any, error) {
	now := cache.Now()
	var b strings.Builder
	data := []ExceptionJSON{}
	for _, o := range cache.ExceptionOwners() {
		t := o.Cache.Exceptions()
		if t == nil {
			continue
		}
		t.Each(now, func(e *cache.Exception) {
			gw := o.Gateway
			if e.Gateway != 0 {
				gw = e.Gateway
			}
			dev := r.FIB.PortName(o.Port)
			b.WriteString(pipeline.IPString(e.Daddr))
			if gw != 0 {
				b.WriteString(" via " + pipeline.IPString(gw))
			}
			fmt.Fprintf(&b, " dev %s \n    %s\n", dev, exceptionText(e))
			j := ExceptionJSON{Dst: pipeline.IPString(e.Daddr), Dev: dev, Redirected: e.Gateway != 0, MTU: e.PMTU}
			if gw != 0 {
				j.Gateway = pipeline.IPString(gw)
			}
			if e.Expires != 0 {
				j.Expires = max(0, (e.Expires-now)/1e9)
			}
			data = append(data, j)
		})
	}
	return b.String(), data, nil
}

func countExceptions() int {
	n := 0
	for _, o := range cache.ExceptionOwners() {
		if t := o.Cache.Exceptions(); t != nil {
			n += t.Len()
		}
	}
	return n
}
