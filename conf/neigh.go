package conf

import (
	"fmt"
	"sort"
	"time"

	"ferry/cache/neigh"
)

// neighKnob is one net.ipv4.neigh.<port>.* setting.
type neighKnob struct {
	unit time.Duration // 0 for counts and booleans
	set  func(p *neigh.Params, v int)
	get  func(p *neigh.Params) int
}

func durKnob(unit time.Duration, f func(p *neigh.Params) *time.Duration) neighKnob {
	return neighKnob{unit: unit,
		set: func(p *neigh.Params, v int) { *f(p) = time.Duration(v) * unit },
		get: func(p *neigh.Params) int { return int(*f(p) / unit) }}
}

func intKnob(f func(p *neigh.Params) *int) neighKnob {
	return neighKnob{set: func(p *neigh.Params, v int) { *f(p) = v }, get: func(p *neigh.Params) int { return *f(p) }}
}

func boolKnob(f func(p *neigh.Params) *bool) neighKnob {
	return neighKnob{set: func(p *neigh.Params, v int) { *f(p) = v != 0 }, get: func(p *neigh.Params) int { return b01(*f(p)) }}
}

// neighKnobs uses the kernel's sysctl names and units.
var neighKnobs = map[string]neighKnob{
	"base_reachable_time":    durKnob(time.Second, func(p *neigh.Params) *time.Duration { return &p.BaseReachableTime }),
	"base_reachable_time_ms": durKnob(time.Millisecond, func(p *neigh.Params) *time.Duration { return &p.BaseReachableTime }),
	"delay_first_probe_time": durKnob(time.Second, func(p *neigh.Params) *time.Duration { return &p.DelayFirstProbeTime }),
	"retrans_time_ms":        durKnob(time.Millisecond, func(p *neigh.Params) *time.Duration { return &p.RetransTime }),
	"gc_stale_time":          durKnob(time.Second, func(p *neigh.Params) *time.Duration { return &p.GCStaleTime }),
	"gc_interval":            durKnob(time.Second, func(p *neigh.Params) *time.Duration { return &p.GCInterval }),
	"locktime_ms":            durKnob(time.Millisecond, func(p *neigh.Params) *time.Duration { return &p.Locktime }),
	"mcast_solicit":          intKnob(func(p *neigh.Params) *int { return &p.MCastSolicit }),
	"ucast_solicit":          intKnob(func(p *neigh.Params) *int { return &p.UCastSolicit }),
	"app_solicit":            intKnob(func(p *neigh.Params) *int { return &p.AppSolicit }),
	"mcast_resolicit":        intKnob(func(p *neigh.Params) *int { return &p.MCastResolicit }),
	"gc_thresh1":             intKnob(func(p *neigh.Params) *int { return &p.GCThresh1 }),
	"gc_thresh2":             intKnob(func(p *neigh.Params) *int { return &p.GCThresh2 }),
	"gc_thresh3":             intKnob(func(p *neigh.Params) *int { return &p.GCThresh3 }),
	"unres_qlen_bytes":       intKnob(func(p *neigh.Params) *int { return &p.UnresQlenBytes }),
	"arp_accept":             boolKnob(func(p *neigh.Params) *bool { return &p.ArpAccept }),
	"proxy_arp":              boolKnob(func(p *neigh.Params) *bool { return &p.ProxyARP }),
}

func neighKnobNames() []string {
	var n []string
	for k := range neighKnobs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// applyNeighKnob sets one kernel-named neighbour knob and validates the result.
func applyNeighKnob(p *neigh.Params, name string, v int) error {
	k, ok := neighKnobs[name]
	if !ok {
		return fmt.Errorf("unknown neighbour knob %q (known: %v)", name, neighKnobNames())
	}
	if v < 0 {
		return fmt.Errorf("%s: must not be negative", name)
	}
	k.set(p, v)
	return p.Validate()
}

// NeighParams returns the port's neighbour settings: the kernel's defaults
// with the config's `neigh:` keys applied.
func (p *Port) NeighParams() (neigh.Params, error) {
	np := neigh.DefaultParams()
	names := make([]string, 0, len(p.Neigh))
	for k := range p.Neigh {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := applyNeighKnob(&np, k, p.Neigh[k]); err != nil {
			return np, err
		}
	}
	return np, nil
}

// NeighKnobs writes a port's neighbour parameters as its neigh: section:
// the knobs that differ from the kernel's defaults (base_reachable_time
// in milliseconds).
func NeighKnobs(np neigh.Params) map[string]int {
	def := neigh.DefaultParams()
	out := map[string]int{}
	for name, k := range neighKnobs {
		if name == "base_reachable_time" {
			continue
		}
		if v := k.get(&np); v != k.get(&def) {
			out[name] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
