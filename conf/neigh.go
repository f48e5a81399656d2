package conf

import (
	"fmt"
	"sort"

	"ferry/cache/neigh"
)

// applyNeighKnob sets one kernel-named neighbour knob and validates the result.
func applyNeighKnob(p *neigh.Params, name string, v int) error {
	d := findKnob(scopeNeigh, name)
	if d == nil {
		names := knobNames(scopeNeigh)
		sort.Strings(names)
		return fmt.Errorf("unknown neighbour knob %q (known: %v)", name, names)
	}
	if v < 0 {
		return fmt.Errorf("%s: must not be negative", name)
	}
	d.set(&knobSettings{neigh: p}, v)
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
	for _, d := range knobDefs {
		// base_reachable_time_ms says the same more precisely.
		if d.scope != scopeNeigh || d.name == "base_reachable_time" {
			continue
		}
		if v := d.get(&knobSettings{neigh: &np}); v != d.get(&knobSettings{neigh: &def}) {
			out[d.name] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
