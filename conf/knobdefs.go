package conf

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"ferry/cache/neigh"
	"ferry/pipeline"
)

// knobScope says which settings a knob belongs to.
type knobScope int

const (
	scopeGlobal knobScope = iota // pipeline.Knobs: 'knob set NAME VALUE'
	scopePort                    // a port's pipeline.PortInfo: 'knob set dev PORT NAME VALUE'
	scopeNeigh                   // a port's neigh.Params: 'knob set dev PORT neigh.NAME VALUE'
)

// knobSettings are what a knob reads and writes: the global knobs, or one
// port's settings or neighbour parameters.
type knobSettings struct {
	global *pipeline.Knobs
	port   *pipeline.PortInfo
	neigh  *neigh.Params
}

// knobDef is one knob: how 'knob set' reads its value (as an int, booleans
// 0 or 1), how the value is written and read back for 'knob show', and
// what else must change first.
type knobDef struct {
	name  string
	scope knobScope
	parse func(name, val string) (int, error) // nil for neighbour knobs: any int, checked by Validate
	set   func(s *knobSettings, v int)
	get   func(s *knobSettings) int
	// effect runs before a port knob is published; an error leaves the
	// knob as it was.
	effect func(r *Router, port, v int) error
}

// knobDefs are every knob, in the order errors list them; neighbour knobs
// use the kernel's sysctl names and units.
var knobDefs = []knobDef{
	{name: "forward_use_pmtu", scope: scopeGlobal, parse: unnamedOnOff,
		set: func(s *knobSettings, v int) { s.global.ForwardUsePMTU = v != 0 },
		get: func(s *knobSettings) int { return b01(s.global.ForwardUsePMTU) }},
	{name: "min_pmtu", scope: scopeGlobal, parse: numberIn(68, 9000),
		set: func(s *knobSettings, v int) { s.global.MinPMTU = uint32(v) },
		get: func(s *knobSettings) int { return int(s.global.MinPMTU) }},
	{name: "mtu_expires", scope: scopeGlobal, parse: numberIn(1, 1<<30),
		set: func(s *knobSettings, v int) { s.global.MTUExpires = time.Duration(v) * time.Second },
		get: func(s *knobSettings) int { return int(s.global.MTUExpires / time.Second) }},
	{name: "redirect_number", scope: scopeGlobal, parse: numberIn(0, 1<<20),
		set: func(s *knobSettings, v int) { s.global.RedirectNumber = v },
		get: func(s *knobSettings) int { return s.global.RedirectNumber }},
	{name: "redirect_silence", scope: scopeGlobal, parse: numberIn(0, 1<<30),
		set: func(s *knobSettings, v int) { s.global.RedirectSilence = time.Duration(v) * time.Millisecond },
		get: func(s *knobSettings) int { return int(s.global.RedirectSilence / time.Millisecond) }},
	{name: "icmp_msgs_per_sec", scope: scopeGlobal, parse: numberIn(0, 1<<24),
		set: func(s *knobSettings, v int) { s.global.ICMPRatePerSec = v },
		get: func(s *knobSettings) int { return s.global.ICMPRatePerSec }},
	{name: "icmp_msgs_burst", scope: scopeGlobal, parse: numberIn(0, 1<<24),
		set: func(s *knobSettings, v int) { s.global.ICMPBurst = v },
		get: func(s *knobSettings) int { return s.global.ICMPBurst }},
	{name: "fib_multipath_hash_policy", scope: scopeGlobal, parse: numberIn(0, 1),
		set: func(s *knobSettings, v int) { s.global.MultipathHashL4 = v == 1 },
		get: func(s *knobSettings) int { return b01(s.global.MultipathHashL4) }},

	{name: "mtu", scope: scopePort, parse: numberIn(68, 9000), effect: (*Router).changeMTU,
		set: func(s *knobSettings, v int) { s.port.MTU = v },
		get: func(s *knobSettings) int { return s.port.MTU }},
	{name: "accept_redirects", scope: scopePort, parse: onOff,
		set: func(s *knobSettings, v int) { s.port.AcceptRedirects = v != 0 },
		get: func(s *knobSettings) int { return b01(s.port.AcceptRedirects) }},
	{name: "secure_redirects", scope: scopePort, parse: onOff,
		set: func(s *knobSettings, v int) { s.port.SecureRedirects = v != 0 },
		get: func(s *knobSettings) int { return b01(s.port.SecureRedirects) }},
	{name: "send_redirects", scope: scopePort, parse: onOff,
		set: func(s *knobSettings, v int) { s.port.SendRedirects = v != 0 },
		get: func(s *knobSettings) int { return b01(s.port.SendRedirects) }},

	neighDuration("base_reachable_time", time.Second, func(p *neigh.Params) *time.Duration { return &p.BaseReachableTime }),
	neighDuration("base_reachable_time_ms", time.Millisecond, func(p *neigh.Params) *time.Duration { return &p.BaseReachableTime }),
	neighDuration("delay_first_probe_time", time.Second, func(p *neigh.Params) *time.Duration { return &p.DelayFirstProbeTime }),
	neighDuration("retrans_time_ms", time.Millisecond, func(p *neigh.Params) *time.Duration { return &p.RetransTime }),
	neighDuration("gc_stale_time", time.Second, func(p *neigh.Params) *time.Duration { return &p.GCStaleTime }),
	neighDuration("gc_interval", time.Second, func(p *neigh.Params) *time.Duration { return &p.GCInterval }),
	neighDuration("locktime_ms", time.Millisecond, func(p *neigh.Params) *time.Duration { return &p.Locktime }),
	neighCount("mcast_solicit", func(p *neigh.Params) *int { return &p.MCastSolicit }),
	neighCount("ucast_solicit", func(p *neigh.Params) *int { return &p.UCastSolicit }),
	neighCount("app_solicit", func(p *neigh.Params) *int { return &p.AppSolicit }),
	neighCount("mcast_resolicit", func(p *neigh.Params) *int { return &p.MCastResolicit }),
	neighCount("gc_thresh1", func(p *neigh.Params) *int { return &p.GCThresh1 }),
	neighCount("gc_thresh2", func(p *neigh.Params) *int { return &p.GCThresh2 }),
	neighCount("gc_thresh3", func(p *neigh.Params) *int { return &p.GCThresh3 }),
	neighCount("unres_qlen_bytes", func(p *neigh.Params) *int { return &p.UnresQlenBytes }),
	neighFlag("arp_accept", func(p *neigh.Params) *bool { return &p.ArpAccept }),
	neighFlag("proxy_arp", func(p *neigh.Params) *bool { return &p.ProxyARP }),
}

func neighDuration(name string, unit time.Duration, field func(p *neigh.Params) *time.Duration) knobDef {
	return knobDef{name: name, scope: scopeNeigh,
		set: func(s *knobSettings, v int) { *field(s.neigh) = time.Duration(v) * unit },
		get: func(s *knobSettings) int { return int(*field(s.neigh) / unit) }}
}

func neighCount(name string, field func(p *neigh.Params) *int) knobDef {
	return knobDef{name: name, scope: scopeNeigh,
		set: func(s *knobSettings, v int) { *field(s.neigh) = v },
		get: func(s *knobSettings) int { return *field(s.neigh) }}
}

func neighFlag(name string, field func(p *neigh.Params) *bool) knobDef {
	return knobDef{name: name, scope: scopeNeigh,
		set: func(s *knobSettings, v int) { *field(s.neigh) = v != 0 },
		get: func(s *knobSettings) int { return b01(*field(s.neigh)) }}
}

// findKnob is the knob of scope named name, or nil.
func findKnob(scope knobScope, name string) *knobDef {
	for i := range knobDefs {
		if d := &knobDefs[i]; d.scope == scope && d.name == name {
			return d
		}
	}
	return nil
}

// knobNames are the names of scope's knobs, in the table's order.
func knobNames(scope knobScope) []string {
	var names []string
	for _, d := range knobDefs {
		if d.scope == scope {
			names = append(names, d.name)
		}
	}
	return names
}

// sortedKnobs are scope's knobs by name.
func sortedKnobs(scope knobScope) []*knobDef {
	var ds []*knobDef
	for i := range knobDefs {
		if knobDefs[i].scope == scope {
			ds = append(ds, &knobDefs[i])
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].name < ds[j].name })
	return ds
}

// numberIn reads a decimal in lo-hi.
func numberIn(lo, hi int) func(name, val string) (int, error) {
	return func(name, val string) (int, error) {
		v, err := strconv.Atoi(val)
		if err != nil || v < lo || v > hi {
			return 0, fmt.Errorf("%s: %q is not a number in %d-%d", name, val, lo, hi)
		}
		return v, nil
	}
}

// onOff reads a boolean as 0 or 1.
func onOff(name, val string) (int, error) {
	v, err := unnamedOnOff(name, val)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// unnamedOnOff is onOff with an error that does not name the knob, as
// forward_use_pmtu's does.
func unnamedOnOff(_, val string) (int, error) {
	switch val {
	case "1", "on", "yes", "true":
		return 1, nil
	case "0", "off", "no", "false":
		return 0, nil
	}
	return 0, fmt.Errorf("%q is not a boolean (0/1, on/off)", val)
}

func b01(b bool) int {
	if b {
		return 1
	}
	return 0
}
