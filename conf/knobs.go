package conf

import (
	"fmt"
	"sort"
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

func parseBool(s string) (bool, error) {
	switch s {
	case "1", "on", "yes", "true":
		return true, nil
	case "0", "off", "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (0/1, on/off)", s)
}

var globalKnobNames = []string{"forward_use_pmtu", "min_pmtu", "mtu_expires", "redirect_number", "redirect_silence", "icmp_msgs_per_sec", "icmp_msgs_burst", "fib_multipath_hash_policy"}
var portKnobNames = []string{"mtu", "accept_redirects", "secure_redirects", "send_redirects"}

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
			strings.Join(globalKnobNames, ", "), strings.Join(portKnobNames, ", "))
	}
	name, val := args[0], args[1]
	if port >= 0 {
		return "", nil, r.setPortKnob(port, name, val)
	}
	k := r.Shared.Knobs()
	num := func(lo, hi int) (int, error) {
		v, err := strconv.Atoi(val)
		if err != nil || v < lo || v > hi {
			return 0, fmt.Errorf("%s: %q is not a number in %d-%d", name, val, lo, hi)
		}
		return v, nil
	}
	var err error
	var v int
	switch name {
	case "forward_use_pmtu":
		k.ForwardUsePMTU, err = parseBool(val)
	case "min_pmtu":
		if v, err = num(68, 9000); err == nil {
			k.MinPMTU = uint32(v)
		}
	case "mtu_expires":
		if v, err = num(1, 1<<30); err == nil {
			k.MTUExpires = time.Duration(v) * time.Second
		}
	case "redirect_number":
		if v, err = num(0, 1<<20); err == nil {
			k.RedirectNumber = v
		}
	case "redirect_silence":
		if v, err = num(0, 1<<30); err == nil {
			k.RedirectSilence = time.Duration(v) * time.Millisecond
		}
	case "icmp_msgs_per_sec":
		if v, err = num(0, 1<<24); err == nil {
			k.ICMPRatePerSec = v
		}
	case "fib_multipath_hash_policy":
		if v, err = num(0, 1); err == nil {
			k.MultipathHashL4 = v == 1
		}
	case "icmp_msgs_burst":
		if v, err = num(0, 1<<24); err == nil {
			k.ICMPBurst = v
		}
	default:
		if contains(portKnobNames, name) {
			return "", nil, fmt.Errorf("knob %s is per port: knob set dev PORT %s VALUE", name, name)
		}
		return "", nil, fmt.Errorf("unknown knob %q (global: %s)", name, strings.Join(globalKnobNames, ", "))
	}
	if err != nil {
		return "", nil, err
	}
	r.Shared.SetKnobs(k)
	r.logKnob(name, val, "")
	return "", nil, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (r *Router) setPortKnob(port int, name, val string) error {
	ports := append([]pipeline.PortInfo(nil), r.Shared.Ports()...)
	pi := &ports[port]
	switch name {
	case "mtu":
		mtu, err := strconv.Atoi(val)
		if err != nil || mtu < 68 || mtu > 9000 {
			return fmt.Errorf("mtu: %q is not a number in 68-9000", val)
		}
		if r.MTU != nil {
			if err := r.MTU.SetMTU(port, mtu); err != nil {
				return err
			}
		}
		if err := r.FIB.SetPort(port, pi.Name, mtu, true); err != nil {
			return err
		}
		pi.MTU = mtu
	case "accept_redirects", "secure_redirects", "send_redirects":
		b, err := parseBool(val)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch name {
		case "accept_redirects":
			pi.AcceptRedirects = b
		case "secure_redirects":
			pi.SecureRedirects = b
		default:
			pi.SendRedirects = b
		}
	default:
		if nk, ok := strings.CutPrefix(name, "neigh."); ok && r.Neigh != nil {
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
				pi.ProxyARP = v != 0
				r.Shared.SetPorts(ports)
			}
			r.logKnob(name, val, pi.Name)
			return nil
		}
		return fmt.Errorf("unknown port knob %q (per port: %s, neigh.<name>)", name, strings.Join(portKnobNames, ", "))
	}
	r.Shared.SetPorts(ports)
	r.logKnob(name, val, pi.Name)
	return nil
}

func (r *Router) logKnob(name, val, port string) {
	if r.Log != nil {
		r.Log.Sugar().Infow("knob changed", "knob", name, "value", val, "port", port)
	}
}

func b01(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *Router) knobShow() (string, any, error) {
	k := r.Shared.Knobs()
	g := map[string]int64{
		"forward_use_pmtu":          int64(b01(k.ForwardUsePMTU)),
		"min_pmtu":                  int64(k.MinPMTU),
		"mtu_expires":               int64(k.MTUExpires / time.Second),
		"redirect_number":           int64(k.RedirectNumber),
		"redirect_silence":          int64(k.RedirectSilence / time.Millisecond),
		"icmp_msgs_per_sec":         int64(k.ICMPRatePerSec),
		"icmp_msgs_burst":           int64(k.ICMPBurst),
		"fib_multipath_hash_policy": int64(b01(k.MultipathHashL4)),
	}
	var b strings.Builder
	names := append([]string(nil), globalKnobNames...)
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s = %d\n", n, g[n])
	}
	ports := map[string]map[string]int{}
	for _, pi := range r.Shared.Ports() {
		pk := map[string]int{"mtu": pi.MTU, "accept_redirects": b01(pi.AcceptRedirects),
			"secure_redirects": b01(pi.SecureRedirects), "send_redirects": b01(pi.SendRedirects)}
		ports[pi.Name] = pk
		for _, n := range portKnobNames {
			fmt.Fprintf(&b, "%s.%s = %d\n", pi.Name, n, pk[n])
		}
		if r.Neigh != nil {
			if i, ok := r.FIB.PortIndex(pi.Name); ok {
				if np, err := r.Neigh.Params(i); err == nil {
					for _, n := range neighKnobNames() {
						v := neighKnobs[n].get(&np)
						pk["neigh."+n] = v
						fmt.Fprintf(&b, "%s.neigh.%s = %d\n", pi.Name, n, v)
					}
				}
			}
		}
	}
	return b.String(), map[string]any{"global": g, "ports": ports}, nil
}
