// Package cache holds routing decisions and what keeps them valid: the
// generation id shared by every core, the per-nexthop decision slots and,
// later, nexthop exceptions.
package cache

import "sync/atomic"

// GenID is the generation id every cached decision is checked against (the
// kernel's rt_genid). Any change that can stale a decision bumps it; one bump
// expires every decision on every core at once, with no scan.
type GenID struct {
	v       atomic.Uint32
	bumps   atomic.Uint64
	held    atomic.Int32 // Hold in force: bumps wait for its release
	pending atomic.Bool
}

// Current returns the generation decisions made now are stamped with.
func (g *GenID) Current() uint32 { return g.v.Load() }

// Bump expires every decision made before it returns (during a Hold,
// when the hold is released).
func (g *GenID) Bump() {
	if g.held.Load() > 0 {
		g.pending.Store(true)
		if g.held.Load() > 0 {
			return
		}
	}
	g.v.Add(1)
	g.bumps.Add(1)
}

// Hold makes the bumps of a set of changes applied together (a reload:
// routes, rules, neighbours, knobs) one, at release: decisions made in
// between are expired with the rest then.
func (g *GenID) Hold() (release func()) {
	g.held.Add(1)
	return func() {
		if g.held.Add(-1) == 0 && g.pending.Swap(false) {
			g.v.Add(1)
			g.bumps.Add(1)
		}
	}
}

// Bumps counts how many times the generation moved.
func (g *GenID) Bumps() uint64 { return g.bumps.Load() }

// Valid reports whether d may still be used (the kernel's rt_cache_valid).
func (g *GenID) Valid(d *Decision) bool {
	return d != nil && d.Genid == g.v.Load()
}
