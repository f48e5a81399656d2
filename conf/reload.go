package conf

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"ferry/cache"
	"ferry/cache/neigh"
	"ferry/fib"
	"ferry/netaddr"
)

// restartOnly names what a running ferryd cannot change in place, with
// how to read it from a config.
var restartOnly = []struct {
	name string
	get  func(c *Config) any
}{
	{"eal", func(c *Config) any { return c.EAL }},
	{"cores", func(c *Config) any { return c.Cores }},
	{"api", func(c *Config) any { return c.API }},
	{"api_group", func(c *Config) any { return c.APIGroup }},
	{"api_readonly_group", func(c *Config) any { return c.APIReadonlyGroup }},
	{"metrics", func(c *Config) any { return c.Metrics }},
	{"hugepages", func(c *Config) any { return c.Hugepages }},
	{"mbufs", func(c *Config) any { return c.Mbufs }},
	{"rx_burst", func(c *Config) any { return c.RxBurst }},
	{"rss_key", func(c *Config) any { return c.RSSKey }},
	{"log_level", func(c *Config) any { return c.LogLevel }},
	{"gc_percent", func(c *Config) any { return c.GCPercent }},
	{"control_plane", func(c *Config) any { return c.ControlPlane }},
}

// portFixed is what of a port needs a restart to change (everything but
// its MTU and knobs).
func portFixed(p Port) any {
	return []any{p.Name, p.Dev, p.Addresses, p.NoARP, p.PointToPoint, p.RxDesc, p.TxDesc, p.KernelIface}
}

// RestartNeeded lists what differs between two configs that only a
// restart can change; empty when next can be applied in place.
func RestartNeeded(cur, next *Config) []string {
	var out []string
	for _, f := range restartOnly {
		if !reflect.DeepEqual(f.get(cur), f.get(next)) {
			out = append(out, f.name)
		}
	}
	if len(cur.Ports) != len(next.Ports) {
		return append(out, "ports (their number)")
	}
	for i := range cur.Ports {
		if !reflect.DeepEqual(portFixed(cur.Ports[i]), portFixed(next.Ports[i])) {
			out = append(out, fmt.Sprintf("ports[%d] (%s)", i, cur.Ports[i].Name))
		}
	}
	return out
}

// Reload applies what changed from the running configuration cur to
// next: routes, rules and neighbours the files differ in, and every knob.
// Routes and rules made with ferryctl since are left alone. A change only
// a restart can make is refused, naming it, and nothing changes; so does
// a route or rule of next that does not parse or apply.
func (r *Router) Reload(cur, next *Config, file string) (string, error) {
	if fixed := RestartNeeded(cur, next); len(fixed) > 0 {
		return "", fmt.Errorf("reload refused: %s changed, which needs a restart (the running configuration is kept)", strings.Join(fixed, ", "))
	}
	// Every line of next must build on its own first: a bad file changes
	// nothing.
	if _, err := BuildFIB(next, file, &cache.GenID{}); err != nil {
		return "", err
	}
	var nreq []neigh.Request
	for i, n := range next.Neighbors {
		req, err := neigh.ParseNeigh(append([]string{"replace"}, strings.Fields(n)...), r.FIB.PortIndex)
		if err != nil {
			return "", next.Errorf(file, fmt.Sprintf("neighbors[%d]", i), "%q: %v", n, err)
		}
		nreq = append(nreq, req)
	}
	// Everything below expires cached decisions once, at the end.
	defer r.Gen.Hold()()
	var report []string
	goneRoutes, newRoutes := diffLines(cur.Routes, next.Routes)
	err := r.FIB.Batch(func(b *fib.Batch) error {
		for _, line := range goneRoutes {
			rt, err := fib.ParseRoute(strings.Fields(line), r.FIB)
			if err == nil {
				err = b.Del(rt)
			}
			if err != nil && !errors.Is(err, fib.ErrNoRoute) {
				return fmt.Errorf("remove route %q: %w", line, err)
			}
		}
		for _, line := range newRoutes {
			rt, err := fib.ParseRoute(strings.Fields(line), r.FIB)
			if err == nil {
				err = b.Replace(rt)
			}
			if err != nil {
				return fmt.Errorf("route %q: %w", line, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	report = append(report, fmt.Sprintf("routes -%d +%d", len(goneRoutes), len(newRoutes)))
	goneRules, newRules := diffLines(cur.Rules, next.Rules)
	for _, line := range goneRules {
		if ru, err := fib.ParseRule(strings.Fields(line), r.FIB); err == nil {
			r.FIB.DelRule(ru) // gone already is what was wanted
		}
	}
	for _, line := range newRules {
		ru, err := fib.ParseRule(strings.Fields(line), r.FIB)
		if err == nil {
			err = r.FIB.AddRule(ru)
		}
		if err != nil {
			return strings.Join(report, ", "), fmt.Errorf("rule %q: %w", line, err)
		}
	}
	report = append(report, fmt.Sprintf("rules -%d +%d", len(goneRules), len(newRules)))
	goneNeigh, _ := diffLines(cur.Neighbors, next.Neighbors)
	for _, line := range goneNeigh {
		if req, err := neigh.ParseNeigh(append([]string{"del"}, neighKey(line)...), r.FIB.PortIndex); err == nil {
			r.Neigh.Apply(req)
		}
	}
	for _, req := range nreq {
		if err := r.Neigh.Apply(req); err != nil {
			return strings.Join(report, ", "), fmt.Errorf("neighbour %s: %w", netaddr.IPv4String(req.IP), err)
		}
	}
	report = append(report, fmt.Sprintf("neighbours %d", len(nreq)))
	if err := r.applyKnobs(next); err != nil {
		return strings.Join(report, ", "), err
	}
	return strings.Join(append(report, "knobs"), ", "), nil
}

// applyKnobs sets every global and per-port knob as next has it.
func (r *Router) applyKnobs(next *Config) error {
	r.Dataplane.SetKnobs(next.Knobs())
	for i, p := range next.Ports {
		cur := r.Dataplane.Ports()
		if i < len(cur) && cur[i].MTU != p.MTU {
			if err := r.setPortKnob(i, "mtu", fmt.Sprint(p.MTU)); err != nil {
				return fmt.Errorf("ports[%d].mtu: %w", i, err)
			}
		}
		ports := append(cur[:0:0], r.Dataplane.Ports()...)
		p.ApplyPortKnobs(&ports[i])
		r.Dataplane.SetPorts(ports)
		np, err := p.NeighParams()
		if err != nil {
			return fmt.Errorf("ports[%d].neigh: %w", i, err)
		}
		if err := r.Neigh.SetParams(i, np); err != nil {
			return fmt.Errorf("ports[%d].neigh: %w", i, err)
		}
	}
	return nil
}

// diffLines compares two lists of commands word by word: what only a has,
// and what only b has, in order.
func diffLines(a, b []string) (onlyA, onlyB []string) {
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, s := range a {
		inA[norm(s)] = true
	}
	for _, s := range b {
		inB[norm(s)] = true
	}
	for _, s := range a {
		if !inB[norm(s)] && !slices.Contains(onlyA, norm(s)) {
			onlyA = append(onlyA, norm(s))
		}
	}
	for _, s := range b {
		if !inA[norm(s)] && !slices.Contains(onlyB, norm(s)) {
			onlyB = append(onlyB, norm(s))
		}
	}
	return onlyA, onlyB
}

// neighKey is a neighbours line's address and port ("ADDR ... dev P"), as
// a delete takes them.
func neighKey(line string) []string {
	f := strings.Fields(line)
	out := []string{}
	if len(f) > 0 {
		out = append(out, f[0])
	}
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "dev" {
			out = append(out, "dev", f[i+1])
		}
	}
	return out
}
