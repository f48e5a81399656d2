package conf

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"ferry/pipeline"
)

// Knobs are the global settings the config sets, over the kernel's defaults.
func (c *Config) Knobs() pipeline.Knobs {
	k := pipeline.DefaultKnobs()
	if c.ForwardUsePMTU != nil {
		k.ForwardUsePMTU = *c.ForwardUsePMTU
	}
	if c.MinPMTU != 0 {
		k.MinPMTU = uint32(c.MinPMTU)
	}
	if c.MTUExpires != 0 {
		k.MTUExpires = time.Duration(c.MTUExpires) * time.Second
	}
	if c.RedirectNumber != nil {
		k.RedirectNumber = *c.RedirectNumber
	}
	if c.RedirectSilence != 0 {
		k.RedirectSilence = time.Duration(c.RedirectSilence) * time.Millisecond
	}
	k.MultipathHashL4 = c.MultipathHashPolicy == 1
	return k
}

// ApplyPortKnobs fills a port's redirect settings from the config, over the
// defaults of a forwarding kernel: accept off, secure on, send on.
func (p *Port) ApplyPortKnobs(pi *pipeline.PortInfo) {
	pi.AcceptRedirects, pi.SecureRedirects, pi.SendRedirects = false, true, true
	if p.AcceptRedirects != nil {
		pi.AcceptRedirects = *p.AcceptRedirects
	}
	if p.SecureRedirects != nil {
		pi.SecureRedirects = *p.SecureRedirects
	}
	if p.SendRedirects != nil {
		pi.SendRedirects = *p.SendRedirects
	}
	pi.ProxyARP = p.Neigh["proxy_arp"] != 0
}

// MTUSetter changes a port's MTU in the data plane.
type MTUSetter interface {
	SetMTU(port, mtu int) error
}

// knob runs 'knob show' and 'knob set [dev PORT] NAME VALUE'. Every change
// publishes new settings and bumps the genid, so cached decisions follow.
func (r *Router) knob(args []string) (string, any, error) {
	if len(args) == 0 || args[0] == "show" {
		return r.knobShow()
	}
	if args[0] != "set" {
		return "", nil, fmt.Errorf("knob: use 'knob show' or 'knob set [dev PORT] NAME VALUE'")
	}
	args = args[1:]
	port := -1
	if len(args) >= 2 && args[0] == "dev" {
		p, ok := r.FIB.PortIndex(args[1])
		if !ok {
			return "", nil, fmt.Errorf("Cannot find device %q", args[1])
		}
		port, args = p, args[2:]
	}
	if len(args) != 2 {
		return "", nil, fmt.Errorf("knob set: want NAME VALUE (global: %s; per port with dev PORT: %s)",
			strings.Join(knobNames(scopeGlobal), ", "), strings.Join(knobNames(scopePort), ", "))
	}
	if port >= 0 {
		return "", nil, r.setPortKnob(port, args[0], args[1])
	}
	return "", nil, r.setGlobalKnob(args[0], args[1])
}

func (r *Router) setGlobalKnob(name, val string) error {
	d := findKnob(scopeGlobal, name)
	if d == nil {
		if findKnob(scopePort, name) != nil {
			return fmt.Errorf("knob %s is per port: knob set dev PORT %s VALUE", name, name)
		}
		return fmt.Errorf("unknown knob %q (global: %s)", name, strings.Join(knobNames(scopeGlobal), ", "))
	}
	v, err := d.parse(name, val)
	if err != nil {
		return err
	}
	k := r.Dataplane.Knobs()
	d.set(&knobSettings{global: &k}, v)
	r.Dataplane.SetKnobs(k)
	r.logKnob(name, val, "")
	return nil
}

func (r *Router) setPortKnob(port int, name, val string) error {
	if nk, ok := strings.CutPrefix(name, "neigh."); ok && r.Neigh != nil {
		return r.setNeighKnob(port, name, nk, val)
	}
	d := findKnob(scopePort, name)
	if d == nil {
		return fmt.Errorf("unknown port knob %q (per port: %s, neigh.<name>)", name, strings.Join(knobNames(scopePort), ", "))
	}
	v, err := d.parse(name, val)
	if err != nil {
		return err
	}
	if d.effect != nil {
		if err := d.effect(r, port, v); err != nil {
			return err
		}
	}
	ports := append([]pipeline.PortInfo(nil), r.Dataplane.Ports()...)
	d.set(&knobSettings{port: &ports[port]}, v)
	r.Dataplane.SetPorts(ports)
	r.logKnob(name, val, ports[port].Name)
	return nil
}

// changeMTU is the mtu knob's effect: the port and the FIB take the new
// MTU before the pipelines do.
func (r *Router) changeMTU(port, mtu int) error {
	if r.MTU != nil {
		if err := r.MTU.SetMTU(port, mtu); err != nil {
			return err
		}
	}
	return r.FIB.SetPort(port, r.Dataplane.Ports()[port].Name, mtu, true)
}

// setNeighKnob sets neigh.NAME (nk is NAME) on a port through the
// neighbour manager.
func (r *Router) setNeighKnob(port int, name, nk, val string) error {
	v, err := strconv.Atoi(val)
	if err != nil {
		return fmt.Errorf("%s: %q is not a number", name, val)
	}
	np, err := r.Neigh.Params(port)
	if err != nil {
		return err
	}
	if err := applyNeighKnob(&np, nk, v); err != nil {
		return err
	}
	if err := r.Neigh.SetParams(port, np); err != nil {
		return err
	}
	if nk == "proxy_arp" {
		// The pipelines answer proxied ARP from the port's settings.
		ports := append([]pipeline.PortInfo(nil), r.Dataplane.Ports()...)
		ports[port].ProxyARP = v != 0
		r.Dataplane.SetPorts(ports)
	}
	r.logKnob(name, val, r.Dataplane.Ports()[port].Name)
	return nil
}

func (r *Router) logKnob(name, val, port string) {
	if r.Log != nil {
		r.Log.Sugar().Infow("knob changed", "knob", name, "value", val, "port", port)
	}
}

func (r *Router) knobShow() (string, any, error) {
	var b strings.Builder
	k := r.Dataplane.Knobs()
	g := map[string]int64{}
	for _, d := range sortedKnobs(scopeGlobal) {
		v := d.get(&knobSettings{global: &k})
		g[d.name] = int64(v)
		fmt.Fprintf(&b, "%s = %d\n", d.name, v)
	}
	ports := map[string]map[string]int{}
	for _, pi := range r.Dataplane.Ports() {
		pk := map[string]int{}
		ports[pi.Name] = pk
		for _, d := range knobDefs {
			if d.scope == scopePort {
				v := d.get(&knobSettings{port: &pi})
				pk[d.name] = v
				fmt.Fprintf(&b, "%s.%s = %d\n", pi.Name, d.name, v)
			}
		}
		if r.Neigh == nil {
			continue
		}
		i, ok := r.FIB.PortIndex(pi.Name)
		if !ok {
			continue
		}
		np, err := r.Neigh.Params(i)
		if err != nil {
			continue
		}
		for _, d := range sortedKnobs(scopeNeigh) {
			v := d.get(&knobSettings{neigh: &np})
			pk["neigh."+d.name] = v
			fmt.Fprintf(&b, "%s.neigh.%s = %d\n", pi.Name, d.name, v)
		}
	}
	return b.String(), map[string]any{"global": g, "ports": ports}, nil
}
