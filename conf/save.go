package conf

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"ferry/cache/neigh"
	"ferry/fib"
	"ferry/netaddr"
)

// Save renders the running state as a configuration ferryd starts from:
// cur's settings with the routes, rules and permanent neighbours as they
// are now, and every knob as set. What the control plane's mirror put in
// the FIB is left out: the routing daemon puts it back.
func (r *Router) Save(cur *Config) ([]byte, error) {
	c := *cur
	c.Routes, c.Rules, c.Neighbors = []string{}, []string{}, []string{}
	for _, t := range r.FIB.Tables() {
		if t == fib.TableLocal {
			continue
		}
		for _, rt := range r.FIB.Routes(t) {
			if rt.Proto == fib.ProtoKernel || r.CP != nil && r.CP.OwnsRoute(rt) {
				continue // made by an address, or by the routing daemon
			}
			c.Routes = append(c.Routes, RouteLine(rt, r.FIB))
		}
	}
	for _, ru := range r.FIB.Rules() {
		text := fib.FormatRule(ru, r.FIB)
		prio, sel, _ := strings.Cut(text, ":\t")
		if defaultRuleText(prio, sel) || r.CP != nil && r.CP.OwnsRule(text) {
			continue
		}
		sel = strings.Replace(sel, "from all ", "", 1)
		c.Rules = append(c.Rules, sel+" priority "+prio)
	}
	for _, e := range r.Neigh.Entries(-1) {
		if e.State == neigh.Permanent && e.HasMAC {
			c.Neighbors = append(c.Neighbors, fmt.Sprintf("%s lladdr %s dev %s", netaddr.IPv4String(e.IP), e.MAC, r.FIB.PortName(e.Port)))
		}
	}
	r.saveKnobs(&c)
	out, err := yaml.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return append([]byte("# written by 'ferryctl save': the running routes, rules, neighbours and knobs\n"), out...), nil
}

// RouteLine is a route as one 'ip route' command line: what 'route show'
// prints, its nexthops on the same line and its table named.
func RouteLine(rt *fib.Route, f *fib.FIB) string {
	return strings.ReplaceAll(string(fib.AppendRoute(nil, rt, f, rt.Table != fib.TableMain)), "\n\t", " ")
}

func defaultRuleText(prio, sel string) bool {
	return prio == "0" && sel == "from all lookup local" || prio == "32766" && sel == "from all lookup main" ||
		prio == "32767" && sel == "from all lookup default"
}

// saveKnobs writes the running knobs into c, as the config keys say them.
func (r *Router) saveKnobs(c *Config) {
	k := r.Dataplane.Knobs()
	b := k.ForwardUsePMTU
	c.ForwardUsePMTU = &b
	c.MinPMTU = int(k.MinPMTU)
	c.MTUExpires = int(k.MTUExpires.Seconds())
	n := k.RedirectNumber
	c.RedirectNumber = &n
	c.RedirectSilence = int(k.RedirectSilence.Milliseconds())
	c.MultipathHashPolicy = 0
	if k.MultipathHashL4 {
		c.MultipathHashPolicy = 1
	}
	ports := r.Dataplane.Ports()
	c.Ports = append([]Port(nil), c.Ports...)
	for i := range c.Ports {
		if i >= len(ports) {
			break
		}
		p, pi := &c.Ports[i], ports[i]
		p.MTU = pi.MTU
		a, s, d := pi.AcceptRedirects, pi.SecureRedirects, pi.SendRedirects
		p.AcceptRedirects, p.SecureRedirects, p.SendRedirects = &a, &s, &d
		if np, err := r.Neigh.Params(i); err == nil {
			p.Neigh = NeighKnobs(np)
		}
	}
}
